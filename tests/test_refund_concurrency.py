"""Refunds and credits under concurrency (PostgreSQL): the invoice row lock makes simultaneous
requests queue, so caps hold, credit note numbers stay gapless and nothing deadlocks.

The calls race through tests/concurrency.py: each thread has its own database connection, the
threads start together at a barrier and are joined with a timeout, so a hang (a deadlock the
database did not break) fails the test."""

import random
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from audit.models import Action, AuditEvent
from billing.breakdown import LINE_OVER, CreditLineInput
from billing.models import Invoice, InvoiceLine, InvoiceStatus, NumberSeries, Payment
from billing.money import format_money
from billing.rules import NOTHING_LEFT
from billing.services import payment_record
from refunds.models import CreditNote, Refund, RefundStatus
from refunds.services import credit_note_create

from .concurrency import as_user, race, start_race, unexpected
from .conftest import requires_postgres
from .factories import PaymentMethodFactory

D = Decimal
ZERO = D("0")

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def card(clinic):
    return PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                                gateway="sandbox")


def sessions_waiting_for_a_lock():
    """How many other database sessions are blocked on a lock right now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks "
                       "WHERE NOT granted AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_for_sessions_waiting_for_a_lock(count, timeout=30):
    deadline = time.monotonic() + timeout
    while (waiting := sessions_waiting_for_a_lock()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return waiting


def test_it_refunds_a_paid_invoice_once_when_16_full_refunds_run_at_once(
        make_invoice, pay, clerk, reason):
    # given a fully paid invoice (28.700 OMR in cash)
    invoice = make_invoice()
    payment = pay(invoice, "28.700")

    # when 16 full refunds of it run at the same time
    def refund():
        return credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                                  actor=as_user(clerk))

    outcomes = race(*[refund] * 16)

    # then exactly one made a credit note, the 15 others were refused with the plain message
    assert unexpected(outcomes) == []
    notes = [value for ok, value in outcomes if ok]
    refusals = [value.message for ok, value in outcomes if not ok]
    assert len(notes) == 1
    invoice.refresh_from_db()
    assert refusals == [NOTHING_LEFT.format(invoice=invoice)] * 15
    [note] = CreditNote.objects.filter(invoice=invoice)
    assert note.pk == notes[0].pk
    assert (note.amount, note.amount_unapplied, note.sequence) == (D("28.700"), D("28.700"), 1)

    # and the invoice is refunded exactly once
    assert invoice.status == InvoiceStatus.REFUNDED
    assert invoice.amount_refunded == invoice.amount_paid == D("28.700")
    assert invoice.amount_credited == invoice.total
    assert invoice.balance_due == ZERO
    payment.refresh_from_db()
    assert payment.amount_refunded == D("28.700")
    [refund_row] = Refund.objects.filter(invoice=invoice)
    assert (refund_row.amount, refund_row.status) == (D("28.700"), RefundStatus.AWAITING_PAYOUT)
    events = AuditEvent.objects.filter(invoice_id=invoice.pk)
    assert events.filter(action=Action.CREDIT_NOTE_ISSUED).count() == 1
    assert events.filter(action=Action.REFUND_CREATED).count() == 1
    assert NumberSeries.objects.get(clinic=invoice.clinic, kind="credit_note").last_value == 1


def test_it_lets_only_three_of_12_simultaneous_30_percent_credits_through(
        make_invoice, clerk, reason):
    # given an unpaid issued invoice with one line 1 × 100.000 OMR at 5 % (net 100, tax 5)
    invoice = make_invoice([("1", "100.000")])
    line = invoice.lines.get()
    assert (line.net, line.tax) == (D("100.000"), D("5.000"))

    # when 12 credits of 30.000 (30 % of the net) on that line run at the same time
    def credit():
        return credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("30.000"))],
                                  dispute_reason=reason, actor=as_user(clerk))

    outcomes = race(*[credit] * 12)

    # then three fit and nine are refused: at most 10.000 is left on the line
    assert unexpected(outcomes) == []
    notes = [value for ok, value in outcomes if ok]
    refusals = [value.message for ok, value in outcomes if not ok]
    assert len(notes) == 3
    assert refusals == [LINE_OVER.format(
        remaining=format_money(D("10.000"), "OMR"), amount=format_money(D("30.000"), "OMR"),
        line=line.description)] * 9
    line.refresh_from_db()
    assert (line.credited_net, line.credited_tax) == (D("90.000"), D("4.500"))
    assert sorted(n.tax_amount for n in CreditNote.objects.filter(invoice=invoice)) == [
        D("1.500")] * 3
    invoice.refresh_from_db()
    assert invoice.amount_credited == D("94.500")
    assert invoice.balance_due == D("10.500")
    assert invoice.status == InvoiceStatus.ISSUED
    assert sorted(CreditNote.objects.filter(invoice=invoice).values_list(
        "sequence", flat=True)) == [1, 2, 3]
    events = AuditEvent.objects.filter(invoice_id=invoice.pk, action=Action.CREDIT_NOTE_ISSUED)
    assert events.count() == 3
    assert not Refund.objects.exists()


def test_it_numbers_credit_notes_issued_at_the_same_time_without_gaps_or_duplicates(
        make_invoice, clerk, reason, clinic):
    # given 10 unpaid invoices of one clinic, and no credit note yet (no series row either)
    invoices = [make_invoice([("1", "10.000")]) for _ in range(10)]
    assert not NumberSeries.objects.filter(kind="credit_note").exists()

    # when each is credited from its own thread at the same time
    def credit(invoice):
        return lambda: credit_note_create(
            invoice=invoice, lines=[CreditLineInput(invoice.lines.get())], dispute_reason=reason,
            actor=as_user(clerk))

    outcomes = race(*[credit(invoice) for invoice in invoices])

    # then every credit succeeded with the numbers 1..10, each once
    assert [repr(value) for ok, value in outcomes if not ok] == []
    stored = list(CreditNote.objects.filter(clinic=clinic).values_list("sequence", "number"))
    assert sorted(seq for seq, _ in stored) == list(range(1, 11))
    assert sorted(number for _, number in stored) == [
        f"CN-MUSCAT-{n:06d}" for n in range(1, 11)]
    assert sorted(value.number for _, value in outcomes) == sorted(n for _, n in stored)
    assert NumberSeries.objects.get(clinic=clinic, kind="credit_note").last_value == 10
    assert set(Invoice.objects.values_list("status", flat=True)) == {InvoiceStatus.CREDITED}
    assert AuditEvent.objects.filter(action=Action.CREDIT_NOTE_ISSUED).count() == 10


def test_credit_notes_queue_on_a_busy_number_series_and_stay_gapless(
        make_invoice, clerk, reason, clinic):
    # given a clinic that has issued one credit note, and 10 more unpaid invoices
    first = make_invoice([("1", "10.000")])
    credit_note_create(invoice=first, lines=[CreditLineInput(first.lines.get())],
                       dispute_reason=reason, actor=clerk)
    invoices = [make_invoice([("1", "10.000")]) for _ in range(10)]

    def credit(invoice):
        return lambda: credit_note_create(
            invoice=invoice, lines=[CreditLineInput(invoice.lines.get())], dispute_reason=reason,
            actor=as_user(clerk))

    # when the 10 credits start while the credit note series row is held by someone else,
    # and all of them have reached it and are waiting
    with transaction.atomic():
        NumberSeries.objects.select_for_update().get(clinic=clinic, kind="credit_note")
        finish = start_race(*[credit(invoice) for invoice in invoices])
        waiting = wait_for_sessions_waiting_for_a_lock(len(invoices))
    outcomes = finish()  # the series is released: let them through

    # then each took the next number in turn: 2..11, no duplicate, no error
    assert waiting == len(invoices)
    assert [repr(value) for ok, value in outcomes if not ok] == []
    assert sorted(value.sequence for _, value in outcomes) == list(range(2, 12))
    assert sorted(CreditNote.objects.filter(clinic=clinic).values_list(
        "number", flat=True)) == [f"CN-MUSCAT-{n:06d}" for n in range(1, 12)]
    assert NumberSeries.objects.get(clinic=clinic, kind="credit_note").last_value == 11
    assert AuditEvent.objects.filter(action=Action.CREDIT_NOTE_ISSUED).count() == 11


def assert_ledger_consistent(invoice):
    invoice.refresh_from_db()
    payments = list(Payment.objects.filter(invoice=invoice))
    refunds = Refund.objects.filter(invoice=invoice)
    assert invoice.balance_due >= ZERO
    assert invoice.amount_refunded <= invoice.amount_paid
    assert invoice.amount_paid == sum((p.amount for p in payments), ZERO)
    assert invoice.amount_refunded == (refunds.aggregate(s=Sum("amount"))["s"] or ZERO)
    assert invoice.amount_credited == (
        CreditNote.objects.filter(invoice=invoice).aggregate(s=Sum("amount"))["s"] or ZERO)
    for payment in payments:
        refunded = refunds.filter(payment=payment).aggregate(s=Sum("amount"))["s"] or ZERO
        assert payment.amount_refunded == refunded <= payment.amount
    for line in InvoiceLine.objects.filter(invoice=invoice):
        assert ZERO <= line.credited_net <= line.net
        assert ZERO <= line.credited_tax <= line.tax
    # the state machine agrees with the running totals
    if invoice.amount_refunded > 0:
        assert invoice.status in (InvoiceStatus.PARTIALLY_REFUNDED, InvoiceStatus.REFUNDED)
        assert (invoice.status == InvoiceStatus.REFUNDED) == (
            invoice.amount_credited == invoice.total)


def test_mixed_payments_credits_and_refunds_on_two_invoices_never_deadlock(
        make_invoice, pay, clerk, reason, cash, card, clinic):
    # given two invoices of one clinic (28.700 each), each partly paid in cash and by card
    invoices = [make_invoice(), make_invoice()]
    for invoice in invoices:
        pay(invoice, "6.000")
        pay(invoice, "4.000", method=card, reference="ch_seed")

    def payment(invoice, amount, method, reference=""):
        return lambda: payment_record(invoice=invoice, method=method, amount=D(amount),
                                      actor=as_user(clerk), reference=reference)

    def credit(invoice, position, amount):
        def call():
            line = InvoiceLine.objects.get(invoice=invoice, position=position)
            return credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D(amount))],
                                      dispute_reason=reason, actor=as_user(clerk))
        return call

    def full_refund(invoice):
        return lambda: credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                                      actor=as_user(clerk))

    calls = []
    for invoice in invoices:
        calls += [
            payment(invoice, "5.000", cash),
            payment(invoice, "3.000", card, "ch_more"),
            payment(invoice, "9.000", cash),
            credit(invoice, 1, "4.000"),
            credit(invoice, 2, "1.000"),
            credit(invoice, 1, "2.500"),
            full_refund(invoice),
            full_refund(invoice),
        ]
    random.Random(20261123).shuffle(calls)

    # when they all run at once
    outcomes = race(*calls)

    # then all finished (no deadlock, no database error), refusals aside
    assert unexpected(outcomes) == []
    assert any(ok for ok, _ in outcomes)

    # and every invariant holds on both invoices
    for invoice in invoices:
        assert_ledger_consistent(invoice)
    # credit note numbers of the clinic are still gapless
    sequences = sorted(CreditNote.objects.filter(clinic=clinic).values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    # gateway refunds were sent after their commit, none left pending
    assert not Refund.objects.filter(status=RefundStatus.PENDING).exists()
    assert Refund.objects.filter(gateway="sandbox").count() == AuditEvent.objects.filter(
        action=Action.REFUND_SUCCEEDED, client="gateway:sandbox").count()
    # one audit event per credit note and per payment
    assert AuditEvent.objects.filter(action=Action.CREDIT_NOTE_ISSUED).count() == (
        CreditNote.objects.count())
    assert AuditEvent.objects.filter(action=Action.PAYMENT_RECORDED).count() == (
        Payment.objects.count())


def test_work_on_one_invoice_does_not_wait_for_another_invoice_of_the_same_clinic(
        make_invoice, pay, clerk, cash, reason):
    """docs/rules.md §3.8: caps are checked under a row lock on *the invoice*. Two invoices of one
    clinic must not queue behind each other (only credit notes share the clinic's number series)."""
    # given two issued invoices of one clinic
    busy, other = make_invoice(), make_invoice()
    line = other.lines.get(position=2)

    def on_the_other_invoice():
        # a session that gives up after 2 s instead of queueing
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        payment = payment_record(invoice=other, method=cash, amount=D("5.000"),
                                 actor=as_user(clerk))
        note = credit_note_create(invoice=other, lines=[CreditLineInput(line, D("1.000"))],
                                  dispute_reason=reason, actor=as_user(clerk))
        return payment, note

    # when a payment on the first invoice is in progress (its transaction still open)
    with transaction.atomic():
        pay(busy, "5.000")
        # then a payment and a credit on the second invoice go through meanwhile
        [(ok, value)] = race(on_the_other_invoice)
    assert ok, f"work on {other} waited for {busy}: {value!r}"
    payment, note = value
    other.refresh_from_db()
    assert other.amount_paid == payment.amount == D("5.000")
    assert other.amount_credited == note.amount == D("1.050")
    busy.refresh_from_db()
    assert busy.amount_paid == D("5.000")
