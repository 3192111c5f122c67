"""Enter on the New invoice screen: in the patient search it finds the patient; in any other
field it does nothing (it used to press Find patient and quietly show the page again)."""

import re

from playwright.sync_api import expect


def test_enter_finds_from_the_search_and_does_nothing_elsewhere(demo, open_session):
    clerk = open_session().login("austin_clerk")
    page = clerk.page
    clerk.goto("/billing/invoices/new/")
    page.get_by_label("Description, line 1").fill("Dressing")
    page.evaluate("window.stillThisPage = true")  # gone if the page is sent and shown again
    page.get_by_label("Quantity, line 1").press("Enter")
    page.wait_for_timeout(500)
    page.wait_for_load_state()
    assert page.evaluate("window.stillThisPage === true")

    page.get_by_label("Find a patient").fill("Olivia")
    page.get_by_label("Find a patient").press("Enter")
    expect(page.get_by_label(re.compile("Olivia Martinez"))).to_be_visible()
    expect(page.get_by_label("Description, line 1")).to_have_value("Dressing")
