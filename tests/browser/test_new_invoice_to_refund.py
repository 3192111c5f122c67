"""From nothing to a refund without the admin: Billing > New invoice for a new patient, with a
catalogue service and a free line; issue it; record the payment from More Action; refund one
line with its own button, through the breakdown."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from billing.models import Account, Invoice

D = Decimal


def option_label(select, starts_with: str) -> str:
    return select.locator("option").filter(has_text=re.compile("^" + re.escape(starts_with))
                                           ).first.inner_text().strip()


def test_new_invoice_issued_paid_and_one_line_refunded(demo, open_session):
    clerk = open_session().login("austin_clerk")
    page = clerk.page
    page.get_by_role("button", name="Billing").click()
    page.get_by_role("link", name="New invoice").click()
    expect(page.get_by_role("heading", name="New invoice")).to_be_visible()

    page.get_by_label("A new patient").check()
    page.get_by_label(re.compile(r"^Name")).fill("Grace Okafor")
    page.get_by_label("Patient number").fill("AUS-9001")

    service = page.get_by_label("Service, line 1")
    service.select_option(label=option_label(service, "General consultation"))
    page.get_by_label("Description, line 2").fill("Travel health consultation")
    page.get_by_label("Quantity, line 2").fill("2")
    page.get_by_label("Unit price, line 2").fill("50.00")
    tax = page.get_by_label("Tax rate, line 2")
    tax.select_option(label=option_label(tax, "VAT 5%"))
    clerk.screenshot("new-invoice")
    page.get_by_role("button", name="Issue invoice").click()

    expect(page.get_by_role("alert").first).to_contain_text("issued")
    invoice = Invoice.objects.get(account__number="AUS-9001")
    assert Account.objects.filter(number="AUS-9001", name="Grace Okafor").count() == 1
    assert invoice.number.startswith("INV-AUSTIN-")
    assert invoice.total == D("231.00")  # 120.00 + 2 × 50.00, each with 5% VAT
    expect(page.get_by_role("heading", name=re.compile(invoice.number))).to_be_visible()

    # Record the payment from More Action.
    page.get_by_role("button", name="More Action").click()
    page.get_by_role("link", name="Record payment").click()
    page.get_by_label("Payment method").select_option(label="Card terminal")
    expect(page.get_by_label("Amount")).to_have_value("231.00")
    page.get_by_role("button", name="Record payment").click()
    expect(page.get_by_role("alert").first).to_contain_text("231.00 USD")

    # Refund the free line with its own button.
    line = page.locator("tbody tr").filter(has_text="Travel health consultation")
    line.get_by_role("link", name=re.compile("Refund this line")).click()
    form_line = page.locator("tbody tr").filter(has_text="Travel health consultation")
    expect(form_line.get_by_role("checkbox")).to_be_checked()
    page.get_by_label("Dispute reason").select_option(label="Service not rendered")
    page.get_by_role("button", name="Complete refund").click()
    expect(page.get_by_text("Paid back to the payer")).to_be_visible()
    expect(page.get_by_text("you pay it back by hand")).to_be_visible()
    page.get_by_role("button", name="Refund now").click()

    expect(page.get_by_role("alert").first).to_contain_text("CN-AUSTIN")
    line = page.locator("tbody tr").filter(has_text="Travel health consultation")
    expect(line.locator(".line-credit")).to_have_text("Refunded 105.00 USD")
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("105.00")
    assert invoice.balance_due == D("0.00")
    clerk.screenshot("refunded", readme="invoice-page")
