"""paymentCreate: money received on an invoice of the caller's clinics."""

from decimal import Decimal

import pytest

from audit.models import Action
from billing.access import NO_PERMISSION
from billing.models import InvoiceStatus, Payment
from billing.rules import NOTHING_TO_PAY, PAYMENT_ON_CANCELLED, PAYMENT_ON_DRAFT
from billing.services import AMOUNT_NOT_POSITIVE, AMOUNT_PLACES, METHOD_INACTIVE, OVERPAYMENT
from refunds.services import invoice_cancel

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
from .factories import PaymentMethodFactory

D = Decimal

PAYMENT_CREATE = f"""
mutation ($invoiceId: ID!, $amount: Decimal!, $paymentMethodId: ID!, $reference: String) {{
  paymentCreate(invoiceId: $invoiceId, amount: $amount, paymentMethodId: $paymentMethodId,
                reference: $reference) {{
    payment {{ id amount refundedAmount reference invoiceId paymentMethod {{ id name kind }} }}
    invoice {{ {INVOICE_FIELDS} }}
    errors
  }}
}}
"""


def variables(invoice, amount, method, reference=""):
    return {"invoiceId": str(invoice.pk), "amount": amount, "paymentMethodId": str(method.pk),
            "reference": reference}


def test_it_records_a_part_payment_and_the_invoice_becomes_partially_paid(
        client, token, make_invoice, cash):
    invoice = make_invoice()

    payload = mutate(client, token, PAYMENT_CREATE,
                     variables(invoice, "10.000", cash, " R-17 "), "paymentCreate")

    payment = Payment.objects.get()
    assert payload["errors"] == []
    assert payload["payment"] == {
        "id": str(payment.pk), "amount": "10.000", "refundedAmount": "0.000",
        "reference": "R-17", "invoiceId": str(invoice.pk),
        "paymentMethod": {"id": str(cash.pk), "name": "Cash", "kind": "MANUAL"}}
    assert {key: payload["invoice"][key] for key in ("status", "amountPaid", "balanceDue")} == {
        "status": "PARTIALLY_PAID", "amountPaid": "10.000", "balanceDue": "18.700"}
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, payment.amount, payment.recorded_by.username) \
        == (InvoiceStatus.PARTIALLY_PAID, D("10.000"), D("10.000"), "clerk")
    assert audit_trail(payment) == [
        (Action.PAYMENT_RECORDED, "issued", "partially_paid", D("10.000"), "clerk",
         api_client_of(token))]


def test_paying_the_balance_due_makes_the_invoice_paid(client, token, make_invoice, cash, pay):
    invoice = make_invoice()
    pay(invoice, "10.000")

    payload = mutate(client, token, PAYMENT_CREATE, variables(invoice, "18.7", cash),
                     "paymentCreate")

    assert payload["payment"]["amount"] == "18.700"
    assert {key: payload["invoice"][key] for key in ("status", "amountPaid", "balanceDue")} == {
        "status": "PAID", "amountPaid": "28.700", "balanceDue": "0.000"}
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, D("28.700"))


@pytest.mark.parametrize(("amount", "message"), [
    ("0", AMOUNT_NOT_POSITIVE),
    ("-5.000", AMOUNT_NOT_POSITIVE),
    ("1.0005", AMOUNT_PLACES.format(currency="OMR", places=3, amount="1.0005")),
    ("28.701", OVERPAYMENT.format(amount="28.701 OMR", balance="28.700 OMR")),
])
def test_it_refuses_an_amount_that_is_not_payable(client, token, make_invoice, cash, amount,
                                                  message):
    invoice = make_invoice()

    mutate_refused(client, token, PAYMENT_CREATE, variables(invoice, amount, cash),
                   "paymentCreate", message)


def test_it_refuses_a_payment_on_a_paid_invoice(client, token, make_invoice, cash, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")

    mutate_refused(client, token, PAYMENT_CREATE, variables(invoice, "1.000", cash),
                   "paymentCreate", NOTHING_TO_PAY.format(invoice="Invoice INV-MUSCAT-000001"))


def test_it_refuses_a_payment_on_a_draft(client, token, make_invoice, cash):
    invoice = make_invoice(issue=False)

    mutate_refused(client, token, PAYMENT_CREATE, variables(invoice, "1.000", cash),
                   "paymentCreate", PAYMENT_ON_DRAFT)


def test_it_refuses_a_payment_on_a_cancelled_invoice(client, token, make_invoice, cash, clerk):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Entered twice", actor=clerk)

    mutate_refused(client, token, PAYMENT_CREATE, variables(invoice, "1.000", cash),
                   "paymentCreate",
                   PAYMENT_ON_CANCELLED.format(invoice="Invoice INV-MUSCAT-000001"))


def test_it_refuses_a_payment_method_no_longer_in_use(client, token, make_invoice, cash):
    invoice = make_invoice()
    cash.is_active = False
    cash.save(update_fields=["is_active"])

    mutate_refused(client, token, PAYMENT_CREATE, variables(invoice, "1.000", cash),
                   "paymentCreate", METHOD_INACTIVE.format(method="Cash"))


def test_it_refuses_a_payment_method_of_another_clinic(client, token, make_invoice,
                                                       other_clinic):
    invoice = make_invoice()
    method = PaymentMethodFactory(clinic=other_clinic, name="Cash")

    mutate_refused(client, token, PAYMENT_CREATE, variables(invoice, "1.000", method),
                   "paymentCreate",
                   f"No payment method of Muscat Clinic with id {method.pk} in your clinics.")


def test_a_member_without_the_permission_cannot_record_payments(client, approver, make_invoice,
                                                                cash):
    invoice = make_invoice()

    mutate_refused(client, api_token(approver, WRITE), PAYMENT_CREATE,
                   variables(invoice, "1.000", cash), "paymentCreate",
                   NO_PERMISSION.format(action="record payments"))


def test_it_needs_the_billing_write_scope(client, clerk, make_invoice, cash):
    invoice = make_invoice()

    mutate_without_scope(client, api_token(clerk, "billing:read"), PAYMENT_CREATE,
                         variables(invoice, "1.000", cash), "billing:write")


def test_an_invoice_of_another_clinic_is_not_found(client, token, other_invoice, cash):
    mutate_refused(client, token, PAYMENT_CREATE, variables(other_invoice, "1.000", cash),
                   "paymentCreate", f"No invoice with id {other_invoice.pk} in your clinics.")


def test_it_refuses_a_reference_too_long_to_store_in_a_sentence(client, token, make_invoice,
                                                                cash):
    invoice = make_invoice()

    mutate_refused_in_a_sentence(client, token, PAYMENT_CREATE,
                                 variables(invoice, "1.000", cash, "ch_" + "x" * 98),
                                 "paymentCreate")
