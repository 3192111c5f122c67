"""Refunds and credits as the clinic's manual describes them: "click the invoice; tick the
checkbox next to every line to refund; add the amount for each (without tax); select the payment
method; check the refund breakdown; click Complete refund and then Refund now; the refund value
appears under each refunded item's Sub total"; for an unpaid invoice, "Credit this line"."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from approvals.models import FinancialRequest
from refunds.models import CreditNote

from .helpers import demo_invoice

D = Decimal


def line_row(page, description: str):
    return page.locator("tbody tr").filter(has_text=description)


def request_refund_of_line(clerk, invoice, description: str, amount: str, remarks: str):
    """From the invoice page: the line's own button, the amount without tax, remarks, SAVE."""
    page = clerk.page
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    line_row(page, description).get_by_role("link", name=re.compile("this line")).click()
    expect(page.get_by_role("heading", name="Invoice Refund Request")).to_be_visible()
    row = line_row(page, description)
    expect(row.get_by_role("checkbox")).to_be_checked()
    row.get_by_role("textbox").fill(amount)
    page.get_by_label("Remarks (required)").fill(remarks)
    page.get_by_role("button", name="SAVE").click()
    expect(page.get_by_role("alert").first).to_contain_text("submitted")


def approve(approver, invoice):
    page = approver.page
    approver.goto("/approvals/?status=requested")
    page.get_by_label("Invoice number").fill(invoice.number)
    page.get_by_role("button", name="Search").click()
    page.locator("tbody tr").first.get_by_role("link", name=re.compile(r"^#")).click()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert").first).to_contain_text("approved")


def test_the_breakdown_refuses_more_than_the_approval_allows(demo, open_session):
    invoice = demo_invoice("MUSCAT", ["PHYSIO", "CBC"], paid=True)
    clerk = open_session().login("clerk")
    approver = open_session().login("approver")
    request_refund_of_line(clerk, invoice, "Physiotherapy session", "10.000",
                           "Session cut short: refund part of it.")
    approve(approver, invoice)

    page = clerk.page
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    page.get_by_role("button", name="More Action").click()
    page.get_by_role("link", name="Credit lines").click()
    row = line_row(page, "Physiotherapy session")
    expect(row.get_by_text("Approved: up to 10.000 OMR")).to_be_visible()
    row.get_by_role("checkbox").check()
    row.get_by_role("textbox").fill("12.000")
    page.get_by_label("Dispute reason").select_option(label="Service not rendered")
    page.get_by_role("button", name="Complete refund").click()

    expect(page.get_by_role("alert").first).to_contain_text("approved")
    expect(page.get_by_role("button", name="Refund now")).to_have_count(0)
    clerk.screenshot("refused-above-approval")
    assert not CreditNote.objects.filter(invoice=invoice).exists()
    assert FinancialRequest.objects.get(invoice=invoice).status == "approved"


def test_credit_this_line_on_an_unpaid_invoice_in_a_direct_clinic(demo, open_session):
    invoice = demo_invoice("AUSTIN", ["GP-CONS", "ECG"])
    clerk = open_session().login("austin_clerk")
    page = clerk.page
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    ecg = line_row(page, "Electrocardiogram (ECG)")
    expect(ecg.get_by_role("link", name=re.compile("Refund this line"))).to_have_count(0)
    ecg.get_by_role("link", name=re.compile("Credit this line")).click()

    row = line_row(page, "Electrocardiogram (ECG)")
    expect(row.get_by_role("checkbox")).to_be_checked()
    expect(row.get_by_role("textbox")).to_have_value("89.99")
    page.get_by_label("Dispute reason").select_option(label="Billing error")
    page.get_by_role("button", name="Show the credit").click()
    expect(page.get_by_role("heading", name="Breakdown")).to_be_visible()
    expect(page.get_by_text("Paid back to the payer")).to_be_visible()
    page.get_by_role("button", name="Credit now").click()

    expect(page.get_by_role("alert").first).to_contain_text("CN-AUSTIN")
    ecg = line_row(page, "Electrocardiogram (ECG)")
    expect(ecg.locator(".line-credit")).to_have_text("Credited 94.49 USD")
    expect(ecg.get_by_role("link", name=re.compile("this line"))).to_have_count(0)
    invoice.refresh_from_db()
    assert invoice.amount_credited == D("94.49")
    assert invoice.balance_due == invoice.total - D("94.49")
    clerk.screenshot("credited-line")
