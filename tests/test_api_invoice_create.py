"""invoiceCreate: an invoice for an account of the caller's clinics, issued unless told not."""

from decimal import Decimal

import pytest

from api.mutations.invoice_create import NO_LINES
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.models import Invoice, InvoiceStatus
from billing.services import (
    ACCOUNT_INACTIVE,
    ISSUE_ZERO_TOTAL,
    LINE_NO_DESCRIPTION,
    LINE_PRICE_NEGATIVE,
    LINE_PRICE_PLACES,
    LINE_QUANTITY,
)

from .api_helpers import (
    INVOICE_FIELDS,
    WRITE,
    api_client_of,
    api_token,
    audit_trail,
    mutate,
    mutate_refused,
    mutate_refused_in_a_sentence,
    mutate_without_scope,
)
from .factories import TaxRateFactory

D = Decimal

INVOICE_CREATE = f"""
mutation ($accountId: ID!, $lines: [InvoiceLineInput!]!, $issue: Boolean) {{
  invoiceCreate(accountId: $accountId, lines: $lines, issue: $issue) {{
    invoice {{ {INVOICE_FIELDS} }}
    errors
  }}
}}
"""


def line(vat, description="Consultation", quantity="2", unit_price="10.000"):
    return {"description": description, "quantity": quantity, "unitPrice": unit_price,
            "taxRateId": str(vat.pk)}


def variables(account, lines, **extra):
    return {"accountId": str(account.pk), "lines": lines, **extra}


def test_it_issues_the_invoice_with_its_lines_and_totals(client, token, account, vat, clinic):
    payload = mutate(client, token, INVOICE_CREATE, variables(account, [
        line(vat), line(vat, "Dressing", "1", "7.333")]), "invoiceCreate")

    invoice = Invoice.objects.get()
    first, second = invoice.lines.order_by("position")
    assert payload == {"errors": [], "invoice": {
        "id": str(invoice.pk), "number": "INV-MUSCAT-000001", "status": "ISSUED",
        "currencyId": "OMR", "entityId": str(clinic.pk), "accountId": str(account.pk),
        "subtotal": "27.333", "taxAmount": "1.367", "total": "28.700", "amountPaid": "0.000",
        "amountRefunded": "0.000", "amountCredited": "0.000", "balanceDue": "28.700",
        "lines": [
            {"id": str(first.pk), "description": "Consultation", "quantity": "2",
             "unitPrice": "10.000", "taxRate": "5", "net": "20.000", "tax": "1.000",
             "total": "21.000", "creditedNet": "0.000", "creditedTax": "0.000"},
            {"id": str(second.pk), "description": "Dressing", "quantity": "1",
             "unitPrice": "7.333", "taxRate": "5", "net": "7.333", "tax": "0.367",
             "total": "7.700", "creditedNet": "0.000", "creditedTax": "0.000"},
        ]}}
    assert (invoice.status, invoice.number, invoice.total, invoice.created_by) == (
        InvoiceStatus.ISSUED, "INV-MUSCAT-000001", D("28.700"), account.clinic.members.get())
    client_id = api_client_of(token)
    assert audit_trail(invoice) == [
        (Action.INVOICE_CREATED, "", "draft", D("28.700"), "clerk", client_id),
        (Action.INVOICE_ISSUED, "draft", "issued", D("28.700"), "clerk", client_id),
    ]


def test_with_issue_false_it_leaves_a_draft_without_a_number(client, token, account, vat):
    payload = mutate(client, token, INVOICE_CREATE,
                     variables(account, [line(vat)], issue=False), "invoiceCreate")

    assert (payload["invoice"]["status"], payload["invoice"]["number"]) == ("DRAFT", None)
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.number) == (InvoiceStatus.DRAFT, None)
    assert [event[0] for event in audit_trail(invoice)] == [Action.INVOICE_CREATED]


def test_usd_amounts_have_two_places(client, other_clinic, outsider):
    rate = TaxRateFactory(clinic=other_clinic, name="Sales tax 5%", percentage=D("5"))
    payer = other_clinic.accounts.create(name="John Doe", number="A00001")
    token = api_token(outsider, WRITE)

    payload = mutate(client, token, INVOICE_CREATE, variables(payer, [
        line(rate, unit_price="10.00"), line(rate, "Lab", "1", "7.33")]), "invoiceCreate")

    assert {key: payload["invoice"][key] for key in ("number", "currencyId", "subtotal",
                                                     "taxAmount", "total", "balanceDue")} == {
        "number": "INV-AUSTIN-000001", "currencyId": "USD", "subtotal": "27.33",
        "taxAmount": "1.37", "total": "28.70", "balanceDue": "28.70"}


def test_it_refuses_an_invoice_without_lines(client, token, account):
    mutate_refused(client, token, INVOICE_CREATE, variables(account, []), "invoiceCreate",
                   NO_LINES)


@pytest.mark.parametrize(("bad_line", "message"), [
    ({"description": "  "}, LINE_NO_DESCRIPTION.format(n=2)),
    ({"quantity": "0"}, LINE_QUANTITY.format(n=2)),
    ({"quantity": "1.0005"}, LINE_QUANTITY.format(n=2)),
    ({"unit_price": "-1.000"}, LINE_PRICE_NEGATIVE.format(n=2)),
    ({"unit_price": "7.3333"}, LINE_PRICE_PLACES.format(n=2, currency="OMR", places=3)),
])
def test_it_refuses_an_invalid_line_and_creates_nothing(client, token, account, vat, bad_line,
                                                        message):
    mutate_refused(client, token, INVOICE_CREATE,
                   variables(account, [line(vat), line(vat, **bad_line)]), "invoiceCreate",
                   message)


def test_it_refuses_to_issue_an_invoice_of_total_zero_and_keeps_no_draft(client, token,
                                                                          account, vat):
    mutate_refused(client, token, INVOICE_CREATE,
                   variables(account, [line(vat, unit_price="0.000")]), "invoiceCreate",
                   ISSUE_ZERO_TOTAL)


def test_it_refuses_a_closed_account(client, token, account, vat):
    account.is_active = False
    account.save(update_fields=["is_active"])

    mutate_refused(client, token, INVOICE_CREATE, variables(account, [line(vat)]),
                   "invoiceCreate", ACCOUNT_INACTIVE.format(account=account))


def test_it_refuses_a_tax_rate_of_another_clinic(client, token, account, other_clinic):
    rate = TaxRateFactory(clinic=other_clinic, name="Sales tax 5%", percentage=D("5"))

    mutate_refused(client, token, INVOICE_CREATE, variables(account, [line(rate)]),
                   "invoiceCreate", f"No tax rate of Muscat Clinic with id {rate.pk} in your "
                                    "clinics.")


def test_it_refuses_an_inactive_tax_rate(client, token, account, vat):
    vat.is_active = False
    vat.save(update_fields=["is_active"])

    mutate_refused(client, token, INVOICE_CREATE, variables(account, [line(vat)]),
                   "invoiceCreate", f"No tax rate of Muscat Clinic with id {vat.pk} in your "
                                    "clinics.")


def test_a_member_without_the_permission_cannot_create_invoices(client, approver, account, vat):
    mutate_refused(client, api_token(approver, WRITE), INVOICE_CREATE,
                   variables(account, [line(vat)]), "invoiceCreate",
                   NO_PERMISSION.format(action="create invoices"))


def test_it_needs_the_billing_write_scope(client, clerk, account, vat):
    mutate_without_scope(client, api_token(clerk, "billing:read"), INVOICE_CREATE,
                         variables(account, [line(vat)]), "billing:write")


def test_an_account_of_another_clinic_is_not_found(client, token, other_invoice, vat):
    other_account = other_invoice.account

    mutate_refused(client, token, INVOICE_CREATE, variables(other_account, [line(vat)]),
                   "invoiceCreate", f"No account with id {other_account.pk} in your clinics.")


@pytest.mark.parametrize(("quantity", "unit_price"), [
    ("10000000", "1.000"),  # quantities are stored with at most 7 digits before the point
    ("9999999.999", "99999999.999"),  # each fits, the line's net does not
])
def test_it_refuses_a_quantity_or_price_too_large_to_store_in_a_sentence(
        client, token, account, vat, quantity, unit_price):
    message = mutate_refused_in_a_sentence(
        client, token, INVOICE_CREATE,
        variables(account, [line(vat, quantity=quantity, unit_price=unit_price)]),
        "invoiceCreate")

    assert message.startswith("Line 1: ")
