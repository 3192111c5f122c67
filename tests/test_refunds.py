"""The worked examples of docs/rules.md §3, to the last digit, in OMR (3 decimals) and USD."""

from decimal import Decimal

import pytest

from audit.models import Action, AuditEvent
from billing.breakdown import CreditLineInput
from billing.models import InvoiceStatus
from refunds.models import CreditNote, CreditNoteKind, Refund, RefundStatus
from refunds.services import credit_note_create, credit_note_preview

from .factories import PaymentMethodFactory, TaxRateFactory

D = Decimal


@pytest.fixture
def card(clinic):
    return PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                                gateway="sandbox")


@pytest.fixture
def example_invoice(make_invoice):
    """Line A 2 × 10.000 at 5% (21.000), line B 1 × 7.333 at 5% (7.700): 28.700."""
    invoice = make_invoice([("2", "10.000"), ("1", "7.333")])
    line_a, line_b = invoice.lines.order_by("position")
    return invoice, line_a, line_b


def test_example_invoice_totals(example_invoice):
    invoice, line_a, line_b = example_invoice
    assert (line_a.net, line_a.tax, line_a.total) == (D("20.000"), D("1.000"), D("21.000"))
    assert (line_b.net, line_b.tax, line_b.total) == (D("7.333"), D("0.367"), D("7.700"))
    assert invoice.total == D("28.700")


def test_refund_part_of_a_line_paid_in_cash_is_a_cash_payout(
    example_invoice, pay, reason, clerk
):
    invoice, line_a, _ = example_invoice
    payment = pay(invoice, "28.700")

    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                              dispute_reason=reason, actor=clerk)

    assert (note.subtotal, note.tax_amount, note.amount) == (D("5.000"), D("0.250"), D("5.250"))
    assert (note.amount_applied, note.amount_unapplied) == (D("0.000"), D("5.250"))
    assert note.kind == CreditNoteKind.REFUND and note.is_credit is False
    assert note.number == "CN-MUSCAT-000001"
    refund = note.refunds.get()
    assert (refund.payment, refund.amount, refund.status) == (
        payment, D("5.250"), RefundStatus.AWAITING_PAYOUT)
    line_a.refresh_from_db()
    assert line_a.credited_total == D("5.250")  # "Refunded 5.250" under line A
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_REFUNDED
    assert invoice.balance_due == D("0.000")
    event = AuditEvent.objects.get(action=Action.CREDIT_NOTE_ISSUED)
    assert (event.from_state, event.to_state, event.amount, event.actor) == (
        "paid", "partially_refunded", D("5.250"), clerk)
    assert AuditEvent.objects.get(action=Action.REFUND_CREATED).amount == D("5.250")


def test_then_a_full_refund_refunds_everything_left(example_invoice, pay, reason, clerk):
    invoice, line_a, line_b = example_invoice
    pay(invoice, "28.700")
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                       dispute_reason=reason,
                       actor=clerk)

    note = credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)

    parts = {line.invoice_line_id: (line.net, line.tax) for line in note.lines.all()}
    assert parts == {line_a.pk: (D("15.000"), D("0.750")), line_b.pk: (D("7.333"), D("0.367"))}
    assert note.amount == D("23.450")
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("28.700") == invoice.amount_paid
    assert invoice.status == InvoiceStatus.REFUNDED
    assert invoice.balance_due == D("0.000")
    assert sum(r.amount for r in Refund.objects.filter(invoice=invoice)) == D("28.700")


def test_crediting_an_unpaid_line_only_reduces_the_balance(example_invoice, reason, clerk):
    invoice, _, line_b = example_invoice

    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)],
                              dispute_reason=reason,
                              actor=clerk)

    assert note.amount == D("7.700")
    assert (note.amount_applied, note.amount_unapplied) == (D("7.700"), D("0.000"))
    assert note.kind == CreditNoteKind.CREDIT and note.is_credit is True
    assert not note.refunds.exists()
    invoice.refresh_from_db()
    assert invoice.balance_due == D("21.000")
    assert invoice.status == InvoiceStatus.ISSUED


def test_crediting_every_unpaid_line_leaves_the_invoice_credited(example_invoice, reason, clerk):
    invoice, line_a, line_b = example_invoice
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a)], dispute_reason=reason,
                       actor=clerk)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CREDITED
    assert invoice.balance_due == D("0.000")
    assert invoice.amount_credited == D("28.700")


def test_credit_beyond_the_balance_is_refunded_through_the_gateway(
    example_invoice, pay, card, reason, clerk, django_capture_on_commit_callbacks
):
    invoice, line_a, _ = example_invoice
    payment = pay(invoice, "10.000", method=card, reference="ch_3Nx")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a)],
                                  dispute_reason=reason, actor=clerk)

    assert note.amount == D("21.000")
    assert (note.amount_applied, note.amount_unapplied) == (D("18.700"), D("2.300"))
    assert len(callbacks) == 1
    refund = note.refunds.get()
    assert (refund.payment, refund.amount, refund.status) == (
        payment, D("2.300"), RefundStatus.SUCCEEDED)
    assert refund.gateway_reference.startswith("sbx_re_")
    invoice.refresh_from_db()
    assert invoice.balance_due == D("0.000")
    assert invoice.amount_refunded == D("2.300")
    assert invoice.status == InvoiceStatus.PARTIALLY_REFUNDED


def test_three_small_credits_round_tax_cumulatively(make_invoice, reason, clerk):
    invoice = make_invoice([("3", "0.333")])
    line = invoice.lines.get()
    assert (line.net, line.tax) == (D("0.999"), D("0.050"))

    taxes = []
    for _ in range(3):
        note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("0.333"))],
                                  dispute_reason=reason, actor=clerk)
        taxes.append(note.tax_amount)

    assert taxes == [D("0.017"), D("0.016"), D("0.017")]
    line.refresh_from_db()
    assert (line.credited_net, line.credited_tax) == (D("0.999"), D("0.050"))


def test_tax_credited_in_tiny_steps_never_exceeds_the_line_tax(make_invoice, reason, clerk):
    invoice = make_invoice([("1", "1.000")])
    line = invoice.lines.get()
    for step in range(1, 101):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("0.010"))],
                           dispute_reason=reason,
                           actor=clerk)
        line.refresh_from_db()
        assert line.credited_tax <= line.tax
        assert line.credited_tax == (D("0.010") * step * D("0.05")).quantize(
            D("0.001"), rounding="ROUND_HALF_UP")
    assert (line.credited_net, line.credited_tax) == (D("1.000"), D("0.050"))


def test_refund_is_spread_over_payments_latest_first(example_invoice, pay, reason, clerk):
    invoice, _, _ = example_invoice
    first = pay(invoice, "20.000")
    second = pay(invoice, "8.700")

    note = credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)

    refunds = {r.payment_id: r.amount for r in note.refunds.all()}
    assert refunds == {second.pk: D("8.700"), first.pk: D("20.000")}


def test_refund_goes_to_the_chosen_payment_first(example_invoice, pay, reason, clerk):
    invoice, line_a, _ = example_invoice
    first = pay(invoice, "20.000")
    pay(invoice, "8.700")

    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                              dispute_reason=reason, actor=clerk, payment=first)

    assert {r.payment_id: r.amount for r in note.refunds.all()} == {first.pk: D("5.250")}


def test_preview_shows_the_breakdown_and_writes_nothing(
    example_invoice, pay, card, reason, clerk
):
    invoice, line_a, _ = example_invoice
    pay(invoice, "10.000", method=card, reference="ch_1")
    events = AuditEvent.objects.count()

    breakdown = credit_note_preview(invoice=invoice, lines=[CreditLineInput(line_a)], actor=clerk)

    assert [(p.net, p.tax, p.total) for p in breakdown.lines] == [
        (D("20.000"), D("1.000"), D("21.000"))]
    assert (breakdown.pre_payment, breakdown.post_payment) == (D("18.700"), D("2.300"))
    assert [(p.payment.method.name, p.amount) for p in breakdown.refunds] == [
        ("Online card", D("2.300"))]
    assert breakdown.balance_due_after == D("0.000")
    assert CreditNote.objects.count() == 0 and AuditEvent.objects.count() == events


def test_preview_tells_staff_what_to_pay_back_by_hand(example_invoice, pay, clerk):
    invoice, line_a, _ = example_invoice
    pay(invoice, "28.700")
    breakdown = credit_note_preview(invoice=invoice, lines=[CreditLineInput(line_a, D("10.000"))],
                                    actor=clerk)
    assert breakdown.payout_instructions() == ["Pay 10.500 OMR back in cash"]


# -- the same in a 2-decimal currency ------------------------------------------------------------

@pytest.fixture
def usd(other_clinic, clerk):
    other_clinic.members.add(clerk)
    return other_clinic


def test_usd_line_refund_and_full_refund(usd, clerk, reason, make_invoice, pay):
    from .factories import AccountFactory

    vat = TaxRateFactory(clinic=usd, name="VAT 5%", percentage=D("5"))
    cash = PaymentMethodFactory(clinic=usd, name="Cash")
    invoice = make_invoice([("2", "10.00"), ("1", "7.33")], tax_rate=vat, inv_clinic=usd,
                           inv_account=AccountFactory(clinic=usd))
    line_a, line_b = invoice.lines.order_by("position")
    assert (line_a.tax, line_b.tax, invoice.total) == (D("1.00"), D("0.37"), D("28.70"))
    pay(invoice, "28.70", method=cash)

    first = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.00"))],
                               dispute_reason=reason, actor=clerk)
    second = credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)

    assert (first.tax_amount, first.amount) == (D("0.25"), D("5.25"))
    assert second.amount == D("23.45")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.REFUNDED
    assert invoice.amount_refunded == D("28.70")
    assert first.number == "CN-AUSTIN-000001" and second.number == "CN-AUSTIN-000002"


def test_usd_three_small_credits_round_tax_cumulatively(usd, clerk, reason, make_invoice):
    from .factories import AccountFactory

    vat = TaxRateFactory(clinic=usd, name="VAT 5%", percentage=D("5"))
    invoice = make_invoice([("3", "0.33")], tax_rate=vat, inv_clinic=usd,
                           inv_account=AccountFactory(clinic=usd))
    line = invoice.lines.get()
    assert (line.net, line.tax) == (D("0.99"), D("0.05"))
    taxes = [
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("0.33"))],
                           dispute_reason=reason,
                           actor=clerk).tax_amount
        for _ in range(3)
    ]
    assert taxes == [D("0.02"), D("0.01"), D("0.02")]
    assert sum(taxes) == line.tax
