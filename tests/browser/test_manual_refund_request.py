"""The clinic's manual, word for word, for an Invoice Refund Request: "open Home > Billing >
Invoice; use the Search field to find the invoice; click the invoice row to select it, then click
the More Action menu to open the dropdown; select Invoice Refund Request; enter the required
remarks and SAVE". The approver decides it on Financial Approval; the clerk then refunds one
line: tick it, give the amount without tax, choose where the money goes, check the breakdown,
Complete refund, Refund now, and the refund appears under the line's Sub total.

The four screens staff spend their day on are also checked with axe-core: no serious or critical
accessibility violation."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from approvals.models import FinancialRequest
from refunds.models import CreditNote

from .conftest import accessibility_violations
from .helpers import demo_invoice

D = Decimal


def assert_accessible(session, screen: str) -> None:
    violations = accessibility_violations(session.page)
    assert not violations, f"{screen}:\n" + "\n".join(violations)


def test_refund_request_from_the_invoice_list_approved_then_one_line_refunded(
        demo, open_session):
    invoice = demo_invoice("MUSCAT", ["SP-CONS", "LIPID"], paid=True)
    clerk = open_session().login("clerk")
    page = clerk.page

    # Home > Billing > Invoice, Search, select the row, More Action.
    page.get_by_role("button", name="Billing").click()
    page.get_by_role("link", name="Invoice", exact=True).click()
    page.get_by_label("Search").fill(invoice.number)
    page.get_by_role("button", name="Search").click()
    more_action = page.locator("#more-action")
    expect(more_action).to_be_disabled()
    row = page.locator("#invoice-table tbody tr").filter(has_text=invoice.number)
    row.locator("td").nth(2).click()
    expect(row).to_have_attribute("aria-selected", "true")
    expect(more_action).to_be_enabled()
    more_action.click()
    menu_entry = page.get_by_role("link", name="Invoice Refund Request")
    expect(menu_entry).to_be_visible()
    assert_accessible(clerk, "invoice list, menu open")
    clerk.screenshot("invoice-list", readme="invoice-list")
    menu_entry.click()

    # SAVE without remarks is refused; nothing is submitted.
    expect(page.get_by_role("heading", name="Invoice Refund Request")).to_be_visible()
    page.get_by_role("button", name="SAVE").click()
    remarks = page.get_by_label("Remarks (required)")
    assert remarks.evaluate("field => field.validationMessage")
    assert not FinancialRequest.objects.filter(invoice=invoice).exists()
    remarks.fill("Lipid panel was ordered twice; the patient paid both.")
    page.get_by_role("button", name="SAVE").click()
    expect(page.get_by_role("alert").first).to_contain_text("submitted")
    expect(page.get_by_role("status").filter(has_text="waiting for a financial approver")
           ).to_be_visible()

    # The approver filters Financial Approval and approves.
    approver = open_session().login("approver")
    apage = approver.page
    apage.get_by_role("link", name=re.compile(r"^Financial Approval")).click()
    apage.get_by_label("Invoice number").fill(invoice.number)
    apage.get_by_role("button", name="Search").click()
    apage.get_by_role("link", name=re.compile(r"^Requested")).click()
    expect(apage.locator("tbody tr")).to_have_count(1)
    assert_accessible(approver, "Financial Approval")
    approver.screenshot("queue", readme="financial-approval")
    apage.locator("tbody tr").first.get_by_role("link", name=re.compile(r"^#")).click()
    apage.get_by_label("Remarks (optional)").fill("Duplicate order confirmed with the lab.")
    apage.get_by_role("button", name="Approve").click()
    expect(apage.get_by_role("alert").first).to_contain_text("approved")
    # back on the queue, the filters kept
    expect(apage.get_by_label("Invoice number")).to_have_value(invoice.number)

    # The clerk refunds the lipid panel: tick, amount without tax, where to, breakdown.
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    expect(page.get_by_role("status").filter(has_text="approved")).to_be_visible()
    assert_accessible(clerk, "invoice page")
    page.get_by_role("button", name="More Action").click()
    page.get_by_role("link", name="Credit lines").click()
    lipid = page.locator("tbody tr").filter(has_text="Lipid panel")
    lipid.get_by_role("checkbox").check()
    lipid.get_by_role("textbox").fill("9.125")
    page.get_by_label("Dispute reason").select_option(label="Duplicate charge")
    page.get_by_label("Refund to").select_option(index=1)
    assert_accessible(clerk, "refund form")
    page.get_by_role("button", name="Complete refund").click()

    breakdown = page.locator("table").filter(has_text="Paid back to the payer")
    expect(breakdown.locator("tbody tr")).to_have_count(1)
    expect(breakdown).to_contain_text("9.581 OMR")  # 9.125 + 5% VAT
    clerk.screenshot("breakdown")
    page.get_by_role("button", name="Refund now").click()

    expect(page.get_by_role("alert").first).to_contain_text("CN-MUSCAT")
    lipid = page.locator("tbody tr").filter(has_text="Lipid panel")
    expect(lipid.locator(".line-credit")).to_have_text("Refunded 9.581 OMR")
    note = CreditNote.objects.get(invoice=invoice)
    assert note.amount == D("9.581")
    assert FinancialRequest.objects.get(invoice=invoice).status == "completed"
    clerk.screenshot("refunded")
