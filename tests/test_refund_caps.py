"""Every cap of docs/rules.md §3 refused with its message, and nothing written."""

from decimal import Decimal

import pytest

from billing import breakdown as rules
from billing import rules as billing_rules
from billing.access import NO_PERMISSION, NOT_A_MEMBER
from billing.breakdown import CreditLineInput
from billing.exceptions import BusinessRuleError
from refunds import services
from refunds.services import credit_note_create, invoice_cancel

from .factories import (
    AccountFactory,
    DisputeReasonFactory,
    PaymentMethodFactory,
    TaxRateFactory,
    UserFactory,
)

D = Decimal


@pytest.fixture
def paid_invoice(make_invoice, pay):
    invoice = make_invoice([("2", "10.000"), ("1", "7.333")])
    pay(invoice, "28.700")
    return invoice


def lines_of(invoice):
    return list(invoice.lines.order_by("position"))


def test_a_line_cannot_be_credited_beyond_its_net(paid_invoice, reason, clerk, refused):
    line_a, _ = lines_of(paid_invoice)
    credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a, D("15.000"))],
                       dispute_reason=reason, actor=clerk)
    with refused(rules.LINE_OVER.format(remaining="5.000 OMR", amount="5.001 OMR",
                                        line=line_a)):
        credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a, D("5.001"))],
                           dispute_reason=reason, actor=clerk)


def test_a_fully_credited_line_is_refused(paid_invoice, reason, clerk, refused):
    line_a, _ = lines_of(paid_invoice)
    credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a)], dispute_reason=reason,
                       actor=clerk)
    with refused(rules.LINE_NOTHING_LEFT.format(line=line_a)):
        credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a)],
                           dispute_reason=reason, actor=clerk)


def test_nothing_is_left_to_refund_after_a_full_refund(paid_invoice, reason, clerk, refused):
    credit_note_create(full=True, invoice=paid_invoice, dispute_reason=reason, actor=clerk)
    with refused(billing_rules.NOTHING_LEFT.format(invoice=paid_invoice)):
        credit_note_create(full=True, invoice=paid_invoice, dispute_reason=reason, actor=clerk)


def test_a_full_refund_needs_money_paid(make_invoice, reason, clerk, refused):
    invoice = make_invoice()
    with refused(billing_rules.NOTHING_PAID.format(invoice=invoice)):
        credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)


@pytest.mark.parametrize("amount", ["0", "-1.000", "0.000"])
def test_amounts_must_be_positive(paid_invoice, reason, clerk, refused, amount):
    line_a, _ = lines_of(paid_invoice)
    with refused(rules.LINE_AMOUNT_NOT_POSITIVE.format(line=line_a)):
        credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a, D(amount))],
                           dispute_reason=reason, actor=clerk)


def test_amounts_have_at_most_the_currency_places(paid_invoice, reason, clerk, refused):
    line_a, _ = lines_of(paid_invoice)
    with refused(rules.LINE_AMOUNT_PLACES.format(currency="OMR", places=3, amount="1.0005",
                                                 line=line_a)):
        credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a, D("1.0005"))],
                           dispute_reason=reason, actor=clerk)


def test_a_line_of_another_invoice_is_refused(paid_invoice, make_invoice, reason, clerk,
                                              refused):
    other_line = make_invoice().lines.first()
    with refused(rules.LINE_NOT_ON_INVOICE.format(invoice=paid_invoice)):
        credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(other_line)],
                           dispute_reason=reason, actor=clerk)


def test_the_same_line_twice_is_refused(paid_invoice, reason, clerk, refused):
    line_a, _ = lines_of(paid_invoice)
    with refused(rules.LINE_TWICE.format(line=line_a)):
        credit_note_create(invoice=paid_invoice,
                           lines=[CreditLineInput(line_a, D("1.000")),
                                  CreditLineInput(line_a, D("1.000"))],
                           dispute_reason=reason, actor=clerk)


def test_no_lines_is_refused(paid_invoice, reason, clerk, refused):
    with refused(rules.NO_LINES):
        credit_note_create(invoice=paid_invoice, lines=[], dispute_reason=reason, actor=clerk)


def test_a_draft_cannot_be_credited(make_invoice, reason, clerk, refused):
    draft = make_invoice(issue=False)
    with refused(billing_rules.INVOICE_DRAFT):
        credit_note_create(invoice=draft, lines=[CreditLineInput(draft.lines.first())],
                           dispute_reason=reason, actor=clerk)
    with refused(billing_rules.INVOICE_DRAFT):
        credit_note_create(full=True, invoice=draft, dispute_reason=reason, actor=clerk)


def test_a_cancelled_invoice_accepts_no_credit_refund_or_payment(
    make_invoice, reason, clerk, refused, pay
):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk)
    with refused(billing_rules.INVOICE_CANCELLED.format(invoice=invoice)):
        credit_note_create(invoice=invoice,
                           lines=[CreditLineInput(invoice.lines.first(), D("1.000"))],
                           dispute_reason=reason, actor=clerk)
    with refused(billing_rules.INVOICE_CANCELLED.format(invoice=invoice)):
        credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
    with refused(billing_rules.PAYMENT_ON_CANCELLED.format(invoice=invoice)):
        pay(invoice, "1.000")


def test_a_dispute_reason_is_required_and_must_be_in_use(paid_invoice, reason, clerk, refused):
    line_a, _ = lines_of(paid_invoice)
    with refused(services.REASON_REQUIRED):
        credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a)],
                           dispute_reason=None,
                           actor=clerk)
    retired = DisputeReasonFactory(name="Old reason", is_active=False)
    with refused(services.REASON_INACTIVE.format(reason="Old reason")):
        credit_note_create(full=True, invoice=paid_invoice, dispute_reason=retired, actor=clerk)


def test_a_payment_of_another_invoice_is_refused(paid_invoice, make_invoice, pay, reason,
                                                 clerk, refused):
    elsewhere = pay(make_invoice(), "1.000")
    with refused(rules.PAYMENT_NOT_ON_INVOICE.format(invoice=paid_invoice)):
        credit_note_create(full=True, invoice=paid_invoice, dispute_reason=reason, actor=clerk,
                       payment=elsewhere)


def test_a_fully_refunded_payment_cannot_be_chosen(make_invoice, pay, reason, clerk, refused):
    invoice = make_invoice()
    first = pay(invoice, "5.250")
    pay(invoice, "23.450")
    line_a, _ = lines_of(invoice)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                       dispute_reason=reason,
                       actor=clerk, payment=first)
    with refused(rules.PAYMENT_FULLY_REFUNDED.format(payment="5.250 OMR")):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("1.000"))],
                           dispute_reason=reason, actor=clerk, payment=first)


def test_a_refund_never_exceeds_what_each_payment_has_left(make_invoice, pay, reason, clerk):
    invoice = make_invoice()
    first = pay(invoice, "20.000")
    second = pay(invoice, "8.700")
    line_a, _ = lines_of(invoice)

    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a)],
                              dispute_reason=reason,
                              actor=clerk, payment=second)

    assert {r.payment_id: r.amount for r in note.refunds.all()} == {
        second.pk: D("8.700"), first.pk: D("12.300")}
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.amount_refunded, second.amount_refunded) == (D("12.300"), D("8.700"))


def test_the_database_refuses_crediting_a_line_beyond_its_net(paid_invoice):
    from django.db import IntegrityError, transaction

    from billing.models import InvoiceLine

    line_a, _ = lines_of(paid_invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line_a.pk).update(credited_net=D("20.001"))


def test_the_database_refuses_refunds_beyond_payments(paid_invoice):
    from django.db import IntegrityError, transaction

    from billing.models import Invoice, Payment

    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=paid_invoice.pk).update(amount_refunded=D("28.701"))
    payment = paid_invoice.payments.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(amount_refunded=D("28.701"))


# -- who may ------------------------------------------------------------------------------------

def test_an_outsider_cannot_refund(paid_invoice, reason, outsider, refused):
    with refused(NOT_A_MEMBER.format(clinic=paid_invoice.clinic.name)):
        credit_note_create(full=True, invoice=paid_invoice, dispute_reason=reason, actor=outsider)


def test_an_approver_cannot_refund_or_credit(paid_invoice, make_invoice, reason, approver,
                                             refused):
    with refused(NO_PERMISSION.format(action="refund invoices")):
        credit_note_create(full=True, invoice=paid_invoice, dispute_reason=reason, actor=approver)
    unpaid = make_invoice()
    with refused(NO_PERMISSION.format(action="credit invoice lines")):
        credit_note_create(invoice=unpaid, lines=[CreditLineInput(unpaid.lines.first())],
                           dispute_reason=reason, actor=approver)
    with refused(NO_PERMISSION.format(action="cancel invoices")):
        invoice_cancel(invoice=unpaid, remarks="Duplicate", actor=approver)


def test_a_member_without_any_role_cannot_credit(make_invoice, clinic, reason, refused):
    nobody = UserFactory(username="visitor", clinics=[clinic])
    invoice = make_invoice()
    with refused(NO_PERMISSION.format(action="credit invoice lines")):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(invoice.lines.first())],
                           dispute_reason=reason, actor=nobody)


def test_a_usd_credit_with_three_decimals_is_refused(other_clinic, clerk, reason, make_invoice,
                                                     refused):
    other_clinic.members.add(clerk)
    vat = TaxRateFactory(clinic=other_clinic, name="VAT 5%", percentage=D("5"))
    PaymentMethodFactory(clinic=other_clinic, name="Cash")
    invoice = make_invoice([("1", "10.00")], tax_rate=vat, inv_clinic=other_clinic,
                           inv_account=AccountFactory(clinic=other_clinic))
    line = invoice.lines.get()
    with refused(rules.LINE_AMOUNT_PLACES.format(currency="USD", places=2, amount="1.005",
                                                 line=line)):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("1.005"))],
                           dispute_reason=reason,
                           actor=clerk)


def test_refusals_raise_business_rule_errors_not_database_errors(paid_invoice, reason, clerk):
    line_a, _ = lines_of(paid_invoice)
    with pytest.raises(BusinessRuleError):
        credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a, D("99.000"))],
                           dispute_reason=reason, actor=clerk)
