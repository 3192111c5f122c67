"""MUSCAT's refund rules in the browser, as the demo promises them (docs/rules.md §5.1): a refund
whose credit note is above 100.000 OMR needs two different approvers, one under 5.000 OMR goes
straight through.

The large one, end to end: the clerk submits an Invoice Refund Request for the whole refund from
the invoice list; the first approver approves and the request stays Requested, "1 of 2
approvals", with no second Approve button for them; the second approver approves; the clerk then
refunds everything through More Action > Refund, and each line shows its refund under its
Sub total. The request page at "1 of 2" is checked with axe-core."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from approvals.models import FinancialRequest, RequestStatus
from approvals.rules import APPROVED_ALREADY_BY_YOU
from refunds.models import CreditNote

from .conftest import accessibility_violations
from .helpers import demo_invoice

D = Decimal

# 40.000 + 22.000 + 35.000 + 15.000 = 112.000 net, with 5% VAT 117.600: above 100.000
LARGE = ["US-ABD", "XR-CHEST", "SP-CONS", "GP-CONS"]
LINE_TOTALS = {  # each line with its 5% VAT: what is refunded on it
    "Abdominal ultrasound": "42.000 OMR",
    "Chest X-ray": "23.100 OMR",
    "Specialist consultation": "36.750 OMR",
    "General consultation": "15.750 OMR",
}


def open_request_from_queue(session, invoice):
    """Financial Approval, filtered by the invoice number, waiting requests: the one row."""
    page = session.page
    page.get_by_role("link", name=re.compile(r"^Financial Approval")).click()
    page.get_by_label("Invoice number").fill(invoice.number)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=re.compile(r"^Requested")).click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.locator("tbody tr").first.get_by_role("link", name=re.compile(r"^#")).click()
    expect(page.get_by_role("heading", name=re.compile("Invoice Refund Request"))).to_be_visible()


def test_a_refund_above_100_omr_needs_two_different_approvers(demo, open_session):
    invoice = demo_invoice("MUSCAT", LARGE, paid=True)
    assert invoice.total == D("117.600")
    clerk = open_session().login("clerk")
    page = clerk.page

    # Invoice list: select the row, More Action, Invoice Refund Request; nothing ticked is the
    # whole refund.
    page.get_by_role("button", name="Billing").click()
    page.get_by_role("link", name="Invoice", exact=True).click()
    page.get_by_label("Search").fill(invoice.number)
    page.get_by_role("button", name="Search").click()
    row = page.locator("#invoice-table tbody tr").filter(has_text=invoice.number)
    row.locator("td").nth(2).click()
    expect(row).to_have_attribute("aria-selected", "true")
    page.locator("#more-action").click()
    page.get_by_role("link", name="Invoice Refund Request").click()
    expect(page.get_by_role("heading", name="Invoice Refund Request")).to_be_visible()
    page.get_by_label("Remarks (required)").fill(
        "Imaging and consultations booked under the wrong patient; refund everything.")
    page.get_by_role("button", name="SAVE").click()
    expect(page.get_by_role("alert").first).to_contain_text("submitted")
    financial_request = FinancialRequest.objects.get(invoice=invoice)
    assert financial_request.approvals_needed == 2
    assert financial_request.frozen_total == D("117.600")

    # The first approver (Salim Al-Rawahi) approves: 1 of 2, still Requested.
    first = open_session().login("approver")
    fpage = first.page
    open_request_from_queue(first, invoice)
    expect(fpage.get_by_text("needs two different approvers")).to_be_visible()
    expect(fpage.locator(".frozen-breakdown")).to_contain_text("117.600 OMR")
    fpage.get_by_label("Remarks (optional)").fill("Checked the booking log.")
    fpage.get_by_role("button", name="Approve").click()
    expect(fpage.get_by_role("alert").first).to_contain_text("your approval is 1 of 2")
    # back on the queue, its filters kept: the row waits, with one approval of two
    queue_row = fpage.locator("tbody tr").filter(has_text=invoice.number)
    expect(queue_row).to_contain_text("Requested · 1 of 2 approvals")
    financial_request.refresh_from_db()
    assert financial_request.status == RequestStatus.REQUESTED
    assert [a.approved_by.username for a in financial_request.approvals.all()] == ["approver"]

    # The first approver cannot approve again: no Approve button, and the page says why.
    queue_row.get_by_role("link", name=re.compile(r"^#")).click()
    expect(fpage.get_by_role("heading", name=re.compile(r"Requested · 1 of 2 approvals"))
           ).to_be_visible()
    expect(fpage.get_by_text("1 of 2 so far")).to_be_visible()
    expect(fpage.locator(".approval")).to_contain_text("Salim Al-Rawahi")
    expect(fpage.get_by_role("button", name="Approve")).to_have_count(0)
    expect(fpage.get_by_text(APPROVED_ALREADY_BY_YOU)).to_be_visible()
    violations = accessibility_violations(fpage)
    assert not violations, "request page at 1 of 2:\n" + "\n".join(violations)
    first.screenshot("one-of-two")

    # The clerk cannot refund yet: the invoice says it waits.
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    page.get_by_role("button", name="More Action").click()
    refused = page.locator(".action-refused").filter(
        has_text="waiting for a financial approver's decision")
    expect(refused.first).to_be_visible()
    expect(refused.first).to_contain_text(re.compile(r"^Refund"))  # the menu's first: Refund

    # The second approver (the billing administrator, a member of MUSCAT) approves: Approved.
    second = open_session().login("admin")
    open_request_from_queue(second, invoice)
    second.page.get_by_role("button", name="Approve").click()
    expect(second.page.get_by_role("alert").first).to_contain_text("approved")
    financial_request.refresh_from_db()
    assert financial_request.status == RequestStatus.APPROVED
    assert financial_request.decided_by.username == "admin"

    # The clerk refunds it all: More Action > Refund, Complete refund, Refund now.
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    page.get_by_role("button", name="More Action").click()
    page.get_by_role("link", name="Refund", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Refund"))).to_be_visible()
    page.get_by_label("Dispute reason").select_option(label="Billing error")
    page.get_by_role("button", name="Complete refund").click()
    breakdown = page.locator("table").filter(has_text="Paid back to the payer")
    expect(breakdown.locator("tbody tr")).to_have_count(4)
    expect(breakdown.locator("tfoot tr").filter(has_text="Paid back to the payer")
           ).to_contain_text("117.600 OMR")
    clerk.screenshot("breakdown")
    page.get_by_role("button", name="Refund now").click()

    expect(page.get_by_role("alert").first).to_contain_text("CN-MUSCAT")
    for description, total in LINE_TOTALS.items():
        line = page.locator("tbody tr").filter(has_text=description)
        expect(line.locator(".line-credit")).to_have_text(f"Refunded {total}")
    note = CreditNote.objects.get(invoice=invoice)
    assert note.amount == D("117.600")
    assert note.approval_request_id == financial_request.pk
    financial_request.refresh_from_db()
    assert financial_request.status == RequestStatus.COMPLETED
    clerk.screenshot("refunded")


def test_a_refund_under_5_omr_goes_straight_through(demo, open_session):
    invoice = demo_invoice("MUSCAT", ["GP-CONS", "DRESS"], paid=True)
    clerk = open_session().login("clerk")
    page = clerk.page
    clerk.goto(f"/billing/invoices/{invoice.pk}/")

    # Wound dressing, 4.125 + 5% VAT = 4.331 OMR: under 5.000, so its button leads to the
    # refund form itself, not to a request.
    dressing = page.locator("tbody tr").filter(has_text="Wound dressing")
    dressing.get_by_role("link", name=re.compile("Refund this line")).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Credit lines"))).to_be_visible()
    row = page.locator("tbody tr").filter(has_text="Wound dressing")
    expect(row.get_by_role("checkbox")).to_be_checked()
    page.get_by_label("Dispute reason").select_option(label="Service not rendered")
    page.get_by_role("button", name="Complete refund").click()
    breakdown = page.locator("table").filter(has_text="Paid back to the payer")
    expect(breakdown.locator("tfoot tr").filter(has_text="Paid back to the payer")
           ).to_contain_text("4.331 OMR")
    page.get_by_role("button", name="Refund now").click()

    expect(page.get_by_role("alert").first).to_contain_text("CN-MUSCAT")
    dressing = page.locator("tbody tr").filter(has_text="Wound dressing")
    expect(dressing.locator(".line-credit")).to_have_text("Refunded 4.331 OMR")
    assert CreditNote.objects.get(invoice=invoice).amount == D("4.331")
    assert not FinancialRequest.objects.filter(invoice=invoice).exists()
    clerk.screenshot("refunded-directly")
