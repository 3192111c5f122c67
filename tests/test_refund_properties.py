"""Properties of the refund engine on random invoices and random sequences of payments,
credits and full refunds: whatever staff do, the ledger's invariants hold after every step."""

from decimal import Decimal

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.breakdown import CreditLineInput
from billing.exceptions import BusinessRuleError
from billing.models import InvoiceLine, InvoiceStatus
from billing.money import round_money
from billing.services import LineInput, invoice_create, payment_record
from refunds.models import CreditNote, CreditNoteLine, Refund
from refunds.services import credit_note_create

from .factories import PaymentMethodFactory, TaxRateFactory

D = Decimal
ZERO = D("0")
UNIT = D("0.001")

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def thousandths(low, high):
    """A Decimal with at most 3 decimals, between low/1000 and high/1000."""
    return st.integers(low, high).map(lambda n: D(n) * UNIT)


line_specs = st.tuples(
    thousandths(1, 20_000),       # quantity: 0.001 .. 20.000
    thousandths(0, 250_000),      # unit price in OMR: 0.000 .. 250.000
    st.sampled_from(["0", "5", "15"]),
)


def issuable(specs):
    """An invoice with a total of zero cannot be issued: give its first line a price then."""
    if any(round_money(q * p, "OMR") > 0 for q, p, _ in specs):
        return specs
    quantity, _, rate = specs[0]
    return [(quantity, D("1000.000"), rate), *specs[1:]]


invoices = st.lists(line_specs, min_size=1, max_size=4).map(issuable)
OPERATIONS = ["pay", "pay", "credit", "credit", "refund"]


@pytest.fixture
def rates(clinic):
    return {
        "0": TaxRateFactory(clinic=clinic, name="VAT 0%", percentage=D("0")),
        "5": TaxRateFactory(clinic=clinic, name="VAT 5%", percentage=D("5")),
        "15": TaxRateFactory(clinic=clinic, name="VAT 15%", percentage=D("15")),
    }


@pytest.fixture
def methods(clinic):
    # the gateway refunds stay pending (commit callbacks do not run in these tests): the
    # invariants are about the ledger, which counts a refund from the moment it is created
    return [
        PaymentMethodFactory(clinic=clinic, name="Cash"),
        PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                             gateway="sandbox"),
    ]


def total_of(queryset, field="amount"):
    return queryset.aggregate(s=Sum(field))["s"] or ZERO


def assert_invariants(invoice):
    invoice.refresh_from_db()
    assert invoice.balance_due >= ZERO
    assert invoice.amount_refunded <= invoice.amount_paid
    payments = list(invoice.payments.all())
    assert invoice.amount_paid == sum((p.amount for p in payments), ZERO)
    assert sum((p.amount_refunded for p in payments), ZERO) == invoice.amount_refunded
    for payment in payments:
        assert ZERO <= payment.amount_refunded <= payment.amount
        assert total_of(Refund.objects.filter(payment=payment)) == payment.amount_refunded
    assert total_of(Refund.objects.filter(invoice=invoice)) == invoice.amount_refunded
    notes = CreditNote.objects.filter(invoice=invoice)
    assert total_of(notes) == invoice.amount_credited
    assert total_of(notes, "amount_unapplied") == invoice.amount_refunded
    assert invoice.amount_credited <= invoice.total
    for line in InvoiceLine.objects.filter(invoice=invoice):
        assert ZERO <= line.credited_net <= line.net
        assert ZERO <= line.credited_tax <= line.tax
        assert total_of(CreditNoteLine.objects.filter(invoice_line=line), "net") == (
            line.credited_net)
        assert total_of(CreditNoteLine.objects.filter(invoice_line=line), "tax") == (
            line.credited_tax)
        # cumulative rounding: the tax credited is the rounded tax of the net credited
        assert line.credited_tax == round_money(line.credited_net * line.rate, "OMR")
        if line.credited_net == line.net:
            assert line.credited_tax == line.tax
    if invoice.amount_credited == invoice.total:
        assert invoice.status in (InvoiceStatus.REFUNDED, InvoiceStatus.CREDITED,
                                  InvoiceStatus.PAID)
    if invoice.amount_refunded > 0:
        assert invoice.status in (InvoiceStatus.PARTIALLY_REFUNDED, InvoiceStatus.REFUNDED)


@PROPERTY_SETTINGS
@given(specs=invoices, data=st.data())
def test_random_payments_credits_and_refunds_keep_the_ledger_whole(
        specs, data, clinic, account, clerk, rates, reason, methods):
    # given a random issued invoice
    invoice = invoice_create(
        clinic=clinic, account=account, actor=clerk, issue=True,
        lines=[LineInput(description=f"Item {n}", quantity=q, unit_price=p, tax_rate=rates[r])
               for n, (q, p, r) in enumerate(specs, start=1)],
    )
    lines = list(invoice.lines.order_by("position"))
    assert_invariants(invoice)

    # when a random sequence of operations is applied, refusals skipped
    for _ in range(data.draw(st.integers(1, 8), label="steps")):
        operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
        invoice.refresh_from_db()
        try:
            if operation == "pay":
                balance_units = int(invoice.balance_due / UNIT)
                amount = data.draw(thousandths(1, max(balance_units, 1)), label="amount")
                method = data.draw(st.sampled_from(methods), label="method")
                payment_record(invoice=invoice, method=method, amount=amount, actor=clerk,
                               reference="ch_property")
            elif operation == "credit":
                line = data.draw(st.sampled_from(lines), label="line")
                line.refresh_from_db()
                left_units = int(line.creditable_net / UNIT)
                amount = None if left_units == 0 else data.draw(
                    st.none() | thousandths(1, left_units), label="net")
                try:
                    credit_note_create(invoice=invoice, lines=[CreditLineInput(line, amount)],
                                       dispute_reason=reason, actor=clerk)
                except BusinessRuleError:
                    # the caps guarantee a credit within what is left on a line always fits
                    assert left_units == 0, f"a credit of {amount} on {line} was refused"
                    raise
            else:
                credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
        except BusinessRuleError:
            event(f"{operation} refused")
        else:
            event(f"{operation} done")

        # then after every step the invariants hold
        assert_invariants(invoice)


@pytest.mark.django_db
def test_a_line_credited_0_010_at_a_time_never_credits_more_tax_than_it_carries(
        make_invoice, clerk, reason):
    # given a line 1 × 1.000 OMR at 5 % (tax 0.050), nothing paid
    invoice = make_invoice([("1", "1.000")])
    line = invoice.lines.get()
    assert (line.net, line.tax) == (D("1.000"), D("0.050"))

    # when it is credited 0.010 at a time, a hundred times
    taxes = []
    for step in range(1, 101):
        note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("0.010"))],
                                  dispute_reason=reason, actor=clerk)
        taxes.append(note.tax_amount)
        line.refresh_from_db()
        # then at every step the tax credited is the rounded tax of the net credited so far,
        # never more than the line's tax
        assert line.credited_net == D("0.010") * step
        assert line.credited_tax == round_money(line.credited_net * line.rate, "OMR")
        assert ZERO <= line.credited_tax <= D("0.050")
        assert sum(taxes, ZERO) == line.credited_tax

    # and in the end exactly the line's tax was credited, not 100 × 0.001 = 0.100
    assert (line.credited_net, line.credited_tax) == (D("1.000"), D("0.050"))
    assert sum(taxes, ZERO) == D("0.050")
    assert taxes.count(D("0.001")) == 50 and taxes.count(ZERO) == 50
    assert total_of(CreditNoteLine.objects.filter(invoice_line=line), "tax") == D("0.050")
    invoice.refresh_from_db()
    assert (invoice.amount_credited, invoice.balance_due) == (D("1.050"), ZERO)
    assert invoice.status == InvoiceStatus.CREDITED
    assert CreditNote.objects.filter(invoice=invoice).count() == 100
