"""Recording payments: issued → partially_paid → paid, running totals, audit, refusals."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from audit.models import Action, AuditEvent
from billing import access
from billing.models import Invoice, InvoiceStatus, Payment
from billing.rules import NOTHING_TO_PAY, PAYMENT_ON_CANCELLED, PAYMENT_ON_DRAFT
from billing.services import (
    AMOUNT_NOT_POSITIVE,
    AMOUNT_PLACES,
    METHOD_INACTIVE,
    METHOD_OF_OTHER_CLINIC,
    OVERPAYMENT,
    LineInput,
    invoice_create,
    payment_record,
)
from refunds.services import invoice_cancel

from .factories import AccountFactory, PaymentMethodFactory, TaxRateFactory

D = Decimal

# make_invoice() bills 2 × 10.000 + 1 × 7.333 at 5 %: total 28.700 OMR.
TOTAL = D("28.700")


def payment_events(invoice):
    return list(AuditEvent.objects.filter(invoice_id=invoice.pk, action=Action.PAYMENT_RECORDED)
                .order_by("pk"))


def test_it_moves_issued_to_partially_paid_to_paid(make_invoice, pay, clerk, cash, clinic):
    # given an issued invoice of 28.700 OMR
    invoice = make_invoice()
    assert invoice.status == InvoiceStatus.ISSUED

    # when a first part is paid
    first = pay(invoice, "10.000", reference=" R-1 ")
    # then it is partially paid, with the running total and an audit event
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert invoice.amount_paid == D("10.000")
    assert invoice.balance_due == D("18.700")
    assert (first.amount, first.method, first.recorded_by, first.reference) == (
        D("10.000"), cash, clerk, "R-1")
    assert first.received_at is not None
    [event] = payment_events(invoice)
    assert (event.from_state, event.to_state) == ("issued", "partially_paid")
    assert (event.amount, event.currency) == (D("10.000"), "OMR")
    assert (event.actor, event.clinic) == (clerk, clinic)
    assert event.content_type == ContentType.objects.get_for_model(Payment)
    assert event.object_id == str(first.pk)
    assert event.data == {"method": "Cash", "reference": "R-1"}

    # when a second part is paid, still not all
    pay(invoice, "8.700")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert invoice.amount_paid == D("18.700")
    assert [(e.from_state, e.to_state, e.amount) for e in payment_events(invoice)][-1] == (
        "partially_paid", "partially_paid", D("8.700"))

    # when the rest is paid
    pay(invoice, "10.000")
    # then it is paid, nothing is left, and every payment is in the history
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_paid == TOTAL
    assert invoice.balance_due == D("0")
    assert [(e.from_state, e.to_state, e.amount) for e in payment_events(invoice)] == [
        ("issued", "partially_paid", D("10.000")),
        ("partially_paid", "partially_paid", D("8.700")),
        ("partially_paid", "paid", D("10.000")),
    ]
    assert list(invoice.payments.values_list("amount", flat=True)) == [
        D("10.000"), D("8.700"), D("10.000")]


def test_it_pays_in_full_at_once(make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, TOTAL)
    [event] = payment_events(invoice)
    assert (event.from_state, event.to_state, event.amount) == ("issued", "paid", TOTAL)


def test_it_keeps_the_given_received_at(make_invoice, clerk, cash):
    invoice = make_invoice()
    when = datetime.datetime(2030, 1, 2, 9, 30, tzinfo=datetime.UTC)
    payment = payment_record(invoice=invoice, method=cash, amount=D("1.000"), actor=clerk,
                             received_at=when)
    assert Payment.objects.get(pk=payment.pk).received_at == when


def test_payment_refused_on_a_draft(make_invoice, pay, refused):
    draft = make_invoice(issue=False)
    with refused(PAYMENT_ON_DRAFT):
        pay(draft, "1.000")


def test_payment_refused_on_a_cancelled_invoice(make_invoice, pay, clerk, refused):
    # given an invoice cancelled through the cancellation service
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Raised for the wrong patient", actor=clerk)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.CANCELLED
    # when a payment is recorded on it, then it is refused
    with refused(PAYMENT_ON_CANCELLED.format(invoice="Invoice INV-MUSCAT-000001")):
        pay(invoice, "1.000")


def test_payment_refused_above_the_balance_due(make_invoice, pay, refused):
    invoice = make_invoice()
    with refused(OVERPAYMENT.format(amount="28.701 OMR", balance="28.700 OMR")):
        pay(invoice, "28.701")


def test_payment_refused_above_what_is_left_after_a_part_payment(make_invoice, pay, refused):
    invoice = make_invoice()
    pay(invoice, "20.000")
    with refused(OVERPAYMENT.format(amount="10.000 OMR", balance="8.700 OMR")):
        pay(invoice, "10")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PARTIALLY_PAID, D("20.000"))


def test_payment_refused_when_nothing_is_left_to_pay(make_invoice, pay, refused):
    invoice = make_invoice()
    pay(invoice, "28.700")
    with refused(NOTHING_TO_PAY.format(invoice="Invoice INV-MUSCAT-000001")):
        pay(invoice, "0.001")


@pytest.mark.parametrize("amount", ["0", "-1.000", "-0.001", "NaN", "Infinity"])
def test_payment_refused_unless_the_amount_is_positive(make_invoice, pay, refused, amount):
    invoice = make_invoice()
    with refused(AMOUNT_NOT_POSITIVE):
        pay(invoice, amount)


def test_payment_refused_for_a_float_amount(make_invoice, clerk, cash, refused):
    invoice = make_invoice()
    with refused(AMOUNT_NOT_POSITIVE):
        payment_record(invoice=invoice, method=cash, amount=1.5, actor=clerk)


def test_payment_refused_with_more_places_than_omr(make_invoice, pay, refused):
    invoice = make_invoice()
    with refused(AMOUNT_PLACES.format(currency="OMR", places=3, amount="0.0001")):
        pay(invoice, "0.0001")


def test_payment_refused_with_more_places_than_usd(other_clinic, outsider, refused):
    # given an issued invoice of a USD clinic
    rate = TaxRateFactory(clinic=other_clinic, name="Sales tax", percentage=D("8.25"))
    invoice = invoice_create(
        clinic=other_clinic, account=AccountFactory(clinic=other_clinic), actor=outsider,
        lines=[LineInput(description="Visit", quantity=D("1"), unit_price=D("100.00"),
                         tax_rate=rate)],
        issue=True,
    )
    card = PaymentMethodFactory(clinic=other_clinic, name="Card")
    # when 0.001 USD is paid, then it is refused: USD has cents only
    with refused(AMOUNT_PLACES.format(currency="USD", places=2, amount="0.001")):
        payment_record(invoice=invoice, method=card, amount=D("0.001"), actor=outsider)
    # while a whole number of cents is accepted
    payment_record(invoice=invoice, method=card, amount=D("0.01"), actor=outsider)
    assert Invoice.objects.get(pk=invoice.pk).amount_paid == D("0.01")


def test_payment_refused_with_a_method_of_another_clinic(make_invoice, pay, other_clinic, refused):
    invoice = make_invoice()
    foreign_cash = PaymentMethodFactory(clinic=other_clinic, name="Cash")
    with refused(METHOD_OF_OTHER_CLINIC):
        pay(invoice, "1.000", method=foreign_cash)


def test_payment_refused_with_an_inactive_method(make_invoice, pay, clinic, refused):
    invoice = make_invoice()
    cheque = PaymentMethodFactory(clinic=clinic, name="Cheque", is_active=False)
    with refused(METHOD_INACTIVE.format(method="Cheque")):
        pay(invoice, "1.000", method=cheque)


def test_payment_refused_for_a_user_who_is_not_a_member(make_invoice, pay, outsider, refused):
    invoice = make_invoice()
    with refused(access.NOT_A_MEMBER.format(clinic="Muscat Clinic")):
        pay(invoice, "1.000", actor=outsider)


def test_payment_refused_for_an_approver(make_invoice, pay, approver, refused):
    # an approver is a member of the clinic but may not record payments
    invoice = make_invoice()
    with refused(access.NO_PERMISSION.format(action="record payments")):
        pay(invoice, "1.000", actor=approver)
