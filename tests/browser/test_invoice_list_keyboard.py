"""The invoice list without a mouse, and without JavaScript: arrows move the selection and Enter
opens the invoice; with scripts off, the invoice number is still a link to it."""

import re

from playwright.sync_api import expect


def test_arrow_keys_select_rows_and_enter_opens_the_invoice(demo, open_session):
    clerk = open_session().login("clerk")
    page = clerk.page
    clerk.goto("/billing/invoices/?status=paid")
    rows = page.locator("#invoice-table tbody tr")
    first, second = rows.nth(0), rows.nth(1)

    first.focus()
    page.keyboard.press("Space")
    expect(first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(second).to_have_attribute("aria-selected", "true")
    expect(first).to_have_attribute("aria-selected", "false")
    expect(page.locator("#more-action")).to_be_enabled()
    number = second.get_attribute("data-invoice-number")

    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(re.escape(number)))).to_be_visible()


def test_without_javascript_the_number_opens_the_invoice(demo, open_session):
    clerk = open_session(javascript=False).login("clerk")
    page = clerk.page
    clerk.goto("/billing/invoices/?status=issued")
    link = page.locator("#invoice-table tbody tr").first.get_by_role("link").first
    number = link.inner_text().strip()
    link.click()
    expect(page.get_by_role("heading", name=re.compile(re.escape(number)))).to_be_visible()


def test_a_menu_that_failed_to_load_is_tried_again_then_offers_the_invoice(demo,
                                                                            open_session):
    """A failed load is tried once more by itself; failing again, the menu offers to open the
    invoice, and a click on the row later fetches it afresh."""
    clerk = open_session().login("clerk")
    page = clerk.page
    clerk.expected_errors.append("503")  # the failed loads below
    failures = []

    def fail(route, times):
        if len(failures) < times:
            failures.append(route.request.url)
            route.fulfill(status=503, body="Try again")
        else:
            route.continue_()

    # one failure: tried again at once, the menu comes
    page.route("**/actions/", lambda route: fail(route, 1))
    clerk.goto("/billing/invoices/?status=issued")
    rows = page.locator("#invoice-table tbody tr")
    rows.nth(0).locator("td").nth(2).click()
    page.locator("#more-action").click()
    expect(page.get_by_role("link", name="Record payment")).to_be_visible()
    assert len(failures) == 1

    # two failures: the menu offers the invoice; a click on the row fetches it again
    failures.clear()
    page.unroute("**/actions/")
    page.route("**/actions/", lambda route: fail(route, 2))
    page.keyboard.press("Escape")
    rows.nth(1).locator("td").nth(2).click()
    page.locator("#more-action").click()
    expect(page.get_by_role("link", name="Open the invoice to see its actions")).to_be_visible()
    assert len(failures) == 2
    rows.nth(1).locator("td").nth(2).click()
    page.locator("#more-action").click()
    expect(page.get_by_role("link", name="Record payment")).to_be_visible()
