"""Gateway refunds: created pending, sent after commit and never under a lock, retried with the
same idempotency key, reconciled when left pending; manual refunds marked paid out."""

import itertools
import threading
from decimal import Decimal
from io import StringIO

import psycopg
import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from audit.models import Action, AuditEvent
from billing import access
from billing.breakdown import CreditLineInput
from billing.models import Invoice, InvoiceStatus
from refunds.gateways import GatewayRefundResult, GatewayUnavailable
from refunds.gateways.sandbox import SandboxGateway
from refunds.models import Refund, RefundStatus
from refunds.rules import PAYOUT_NOT_AWAITING, RETRY_NOT_FAILED
from refunds.services import credit_note_create, refund_mark_paid_out, refund_retry

from .conftest import requires_postgres
from .factories import PaymentMethodFactory

D = Decimal

SANDBOX = "refunds.gateways.sandbox.SandboxGateway"


@pytest.fixture
def card(clinic):
    return PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                                gateway="sandbox")


def refund_events(refund):
    return list(AuditEvent.objects.filter(
        content_type=ContentType.objects.get_for_model(Refund), object_id=str(refund.pk),
    ).order_by("pk"))


def refund_state(refund):
    return Refund.objects.filter(pk=refund.pk).values(
        "status", "attempts", "gateway_reference", "failure_reason", "completed_at",
        "paid_out_by", "idempotency_key").get()


# -- sent after commit ----------------------------------------------------------------------------

def test_it_creates_a_gateway_refund_pending_and_sends_it_only_after_commit(
        make_invoice, pay, card, clerk, reason, clinic, django_capture_on_commit_callbacks):
    # given an invoice paid in full by card through the sandbox gateway
    invoice = make_invoice()
    payment = pay(invoice, "28.700", method=card, reference="ch_3PqR")

    # when it is refunded in full
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        note = credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
        # then, before the commit callbacks run, the refund is committed as pending
        refund = note.refunds.get()
        assert (refund.status, refund.amount, refund.payment) == (
            RefundStatus.PENDING, D("28.700"), payment)
        assert (refund.gateway, refund.gateway_reference, refund.attempts) == ("sandbox", "", 0)
        assert [e.action for e in refund_events(refund)] == [Action.REFUND_CREATED]

    assert len(callbacks) == 1  # one gateway call, queued for after the commit
    # and once they have run, the gateway accepted it
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.gateway_reference.startswith("sbx_re_")
    assert refund.gateway_reference == SandboxGateway().refund(
        payment=payment, amount=refund.amount, currency="OMR",
        idempotency_key=str(refund.idempotency_key)).reference
    assert (refund.attempts, refund.failure_reason) == (1, "")
    assert refund.completed_at is not None
    created, succeeded = refund_events(refund)
    assert (created.action, created.to_state, created.actor) == (
        Action.REFUND_CREATED, "pending", clerk)
    assert (succeeded.action, succeeded.from_state, succeeded.to_state) == (
        Action.REFUND_SUCCEEDED, "pending", "succeeded")
    assert (succeeded.client, succeeded.actor, succeeded.clinic) == (
        "gateway:sandbox", None, clinic)
    assert (succeeded.amount, succeeded.invoice_id) == (D("28.700"), invoice.pk)
    assert succeeded.data == {"gateway": "sandbox", "reference": refund.gateway_reference}
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.REFUNDED


def test_a_declined_gateway_refund_is_failed_and_shown_on_the_invoice(
        make_invoice, pay, card, clerk, reason, django_capture_on_commit_callbacks):
    # given an invoice paid by a card the sandbox will refuse to refund
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="fail_card")
    line_a = invoice.lines.get(position=1)

    # when part of it is refunded
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                                  dispute_reason=reason, actor=clerk)

    # then the refund failed with the gateway's reason, and the credit note stands
    refund = note.refunds.get()
    assert refund.status == RefundStatus.FAILED
    assert refund.needs_attention
    assert refund.failure_reason == "The card issuer declined the refund (sandbox)."
    assert (refund.attempts, refund.gateway_reference, refund.completed_at) == (1, "", None)
    assert [(e.action, e.to_state, e.client) for e in refund_events(refund)][-1] == (
        Action.REFUND_FAILED, "failed", "gateway:sandbox")
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("5.250")
    assert invoice.status == InvoiceStatus.PARTIALLY_REFUNDED


# -- never while a lock is held --------------------------------------------------------------------

class ProbeGateway:
    """Checks from a second database connection that neither the invoice nor the payment row is
    locked when the gateway is called. Declines the first call for `fail…` references."""

    observations: list[dict] = []
    calls: list[str] = []

    @classmethod
    def reset(cls):
        cls.observations = []
        cls.calls = []

    @staticmethod
    def check(*, invoice_id: int, payment_id: int) -> dict:
        """{"invoice": "free"|"locked", "payment": ...}, seen from a connection of its own."""
        settings_dict = connection.settings_dict
        params = {"dbname": settings_dict["NAME"], "connect_timeout": 10}
        for key, name in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host"),
                          ("PORT", "port")):
            if settings_dict.get(key):
                params[name] = settings_dict[key]
        seen = {}
        with psycopg.connect(**params) as probe:
            for table, pk in (("billing_invoice", invoice_id), ("billing_payment", payment_id)):
                try:
                    with probe.transaction(), probe.cursor() as cursor:
                        cursor.execute(
                            f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT",  # noqa: S608
                            [pk])
                        assert cursor.fetchone() == (pk,), f"{table} {pk} not found"
                    seen[table.removeprefix("billing_")] = "free"
                except psycopg.errors.LockNotAvailable:
                    seen[table.removeprefix("billing_")] = "locked"
        return seen

    def refund(self, *, payment, amount, currency, idempotency_key, retry=0):
        seen = self.check(invoice_id=payment.invoice_id, payment_id=payment.pk)
        type(self).observations.append(seen)
        first_call = idempotency_key not in type(self).calls
        type(self).calls.append(idempotency_key)
        if payment.reference.startswith("fail") and first_call:
            return GatewayRefundResult(status="failed", failure_reason="Probe declined.")
        return GatewayRefundResult(status="succeeded", reference=f"probe_{idempotency_key}")


@pytest.fixture
def probe(clinic):
    ProbeGateway.reset()
    with override_settings(REFUND_GATEWAYS={"sandbox": SANDBOX,
                                            "probe": "tests.test_refund_gateway.ProbeGateway"}):
        yield PaymentMethodFactory(clinic=clinic, name="Probe card", kind="gateway",
                                   gateway="probe")
    ProbeGateway.reset()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_the_gateway_is_never_called_while_the_invoice_or_payment_row_is_locked(
        make_invoice, pay, clerk, reason, probe):
    # given two invoices paid through the probe gateway (one card declines the first time)
    first = make_invoice()
    first_payment = pay(first, "28.700", method=probe, reference="ch_probe")
    second = make_invoice()
    second_payment = pay(second, "28.700", method=probe, reference="fail_then_ok")

    # when part of the first is refunded, then the rest of it (commits are real here)
    line_a = first.lines.get(position=1)
    partial = credit_note_create(invoice=first, lines=[CreditLineInput(line_a, D("5.000"))],
                                 dispute_reason=reason, actor=clerk)
    full = credit_note_create(full=True, invoice=first, dispute_reason=reason, actor=clerk)
    # and the second is refunded, declined, and retried
    declined = credit_note_create(full=True, invoice=second, dispute_reason=reason, actor=clerk)
    declined_refund = declined.refunds.get()
    declined_refund.refresh_from_db()
    assert declined_refund.status == RefundStatus.FAILED
    refund_retry(refund=declined_refund, actor=clerk)

    # then the gateway was called four times, each time with both rows free of locks
    assert ProbeGateway.observations == [{"invoice": "free", "payment": "free"}] * 4
    refunds = [partial.refunds.get(), full.refunds.get(), declined_refund]
    for refund in refunds:
        refund.refresh_from_db()
        assert refund.status == RefundStatus.SUCCEEDED
        assert refund.gateway_reference == f"probe_{refund.idempotency_key}"
        assert refund_events(refund)[-1].action == Action.REFUND_SUCCEEDED
    assert {r.payment_id for r in refunds} == {first_payment.pk, second_payment.pk}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == InvoiceStatus.REFUNDED


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_the_probe_sees_a_lock_when_one_is_held(make_invoice, pay, cash):
    # given a paid invoice
    invoice = make_invoice()
    payment = pay(invoice, "28.700")
    results = []

    def check():
        try:
            results.append(ProbeGateway.check(invoice_id=invoice.pk, payment_id=payment.pk))
        finally:
            connection.close()

    def check_from_another_thread():
        thread = threading.Thread(target=check)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()
        return results.pop()

    # when the test itself holds the invoice row lock, then the probe reports it locked
    with transaction.atomic():
        Invoice.objects.select_for_update().get(pk=invoice.pk)
        assert check_from_another_thread() == {"invoice": "locked", "payment": "free"}

    # and once released, free again
    assert check_from_another_thread() == {"invoice": "free", "payment": "free"}


# -- retry with the same idempotency key ----------------------------------------------------------

class RecordingGateway:
    """Records every idempotency key it is given; declines the first call (sandbox `fail…`
    behaviour) and accepts the ones after."""

    keys: list[str] = []
    retries: list[int] = []
    counter = itertools.count()

    def refund(self, *, payment, amount, currency, idempotency_key, retry=0):
        type(self).keys.append(idempotency_key)
        type(self).retries.append(retry)
        if next(type(self).counter) == 0:
            return SandboxGateway().refund(payment=payment, amount=amount, currency=currency,
                                           idempotency_key=idempotency_key)
        return GatewayRefundResult(status="succeeded", reference=f"rec_{idempotency_key[:8]}")


@pytest.fixture
def recording(clinic):
    RecordingGateway.keys = []
    RecordingGateway.retries = []
    RecordingGateway.counter = itertools.count()
    with override_settings(REFUND_GATEWAYS={
            "sandbox": SANDBOX, "recording": "tests.test_refund_gateway.RecordingGateway"}):
        yield PaymentMethodFactory(clinic=clinic, name="Recorded card", kind="gateway",
                                   gateway="recording")


def test_a_retry_sends_the_same_idempotency_key_and_can_succeed(
        make_invoice, pay, recording, clerk, reason, clinic,
        django_capture_on_commit_callbacks):
    # given a card refund the gateway declined
    invoice = make_invoice()
    pay(invoice, "28.700", method=recording, reference="fail_first")
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
    refund = note.refunds.get()
    assert (refund.status, refund.attempts) == (RefundStatus.FAILED, 1)
    key = str(refund.idempotency_key)
    assert RecordingGateway.keys == [key]

    # when staff retry it
    with django_capture_on_commit_callbacks(execute=True):
        retried = refund_retry(refund=refund, actor=clerk)
        # then it is pending again until the commit
        assert retried.status == RefundStatus.PENDING
        assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PENDING

    # and the gateway received the very same key, and accepted it this time; it is told this is
    # the first retry, so a gateway that remembers answers per key can make a new attempt
    assert RecordingGateway.keys == [key, key]
    assert RecordingGateway.retries == [0, 1]
    refund.refresh_from_db()
    assert str(refund.idempotency_key) == key
    assert (refund.status, refund.attempts) == (RefundStatus.SUCCEEDED, 2)
    assert (refund.gateway_reference, refund.failure_reason) == (f"rec_{key[:8]}", "")
    assert refund.completed_at is not None
    events = refund_events(refund)
    assert [(e.action, e.from_state, e.to_state) for e in events] == [
        (Action.REFUND_CREATED, "", "pending"),
        (Action.REFUND_FAILED, "pending", "failed"),
        (Action.REFUND_RETRIED, "failed", "pending"),
        (Action.REFUND_SUCCEEDED, "pending", "succeeded"),
    ]
    assert [e.client for e in events] == ["", "gateway:recording", "", "gateway:recording"]
    assert (events[2].actor, events[2].clinic) == (clerk, clinic)
    # the money moved once: the invoice totals did not change with the retry
    invoice.refresh_from_db()
    assert (invoice.amount_refunded, invoice.status) == (D("28.700"), InvoiceStatus.REFUNDED)
    assert Refund.objects.filter(invoice=invoice).count() == 1


def test_it_refuses_to_retry_a_refund_that_has_not_failed(
        make_invoice, pay, card, cash, clerk, reason, refused,
        django_capture_on_commit_callbacks):
    # given a succeeded card refund and a cash refund awaiting payout
    invoice = make_invoice()
    pay(invoice, "10.000", method=card, reference="ch_ok")
    pay(invoice, "18.700")
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
    by_status = {r.status: r for r in note.refunds.all()}
    succeeded = by_status[RefundStatus.SUCCEEDED]
    awaiting = by_status[RefundStatus.AWAITING_PAYOUT]

    for refund, status in ((succeeded, "succeeded"), (awaiting, "awaiting payout")):
        before = refund_state(refund)
        # when staff try to retry it, then it is refused and nothing changes
        with django_capture_on_commit_callbacks(execute=True) as callbacks, \
                refused(RETRY_NOT_FAILED.format(status=status)):
            refund_retry(refund=refund, actor=clerk)
        assert callbacks == []
        assert refund_state(refund) == before


def test_it_refuses_to_retry_for_an_outsider(
        make_invoice, pay, card, clerk, outsider, reason, clinic, refused,
        django_capture_on_commit_callbacks):
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="fail_x")
    with django_capture_on_commit_callbacks(execute=True):
        refund = credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                                    actor=clerk).refunds.get()
    before = refund_state(refund)
    with refused(access.NOT_A_MEMBER.format(clinic=clinic.name)):
        refund_retry(refund=refund, actor=outsider)
    assert refund_state(refund) == before == {**before, "status": RefundStatus.FAILED}


# -- manual refunds: paid out by staff ------------------------------------------------------------

def test_it_marks_a_cash_refund_paid_out(make_invoice, pay, clerk, reason, clinic, refused):
    # given a cash refund awaiting payout
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a = invoice.lines.get(position=1)
    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                              dispute_reason=reason, actor=clerk)
    refund = note.refunds.get()
    assert (refund.status, refund.gateway, refund.amount) == (
        RefundStatus.AWAITING_PAYOUT, "", D("5.250"))
    assert refund.needs_attention

    # when staff mark it paid out
    paid = refund_mark_paid_out(refund=refund, actor=clerk, remarks=" handed over at desk ")

    # then it is paid out, by whom and when, with an audit event
    refund.refresh_from_db()
    assert paid.status == refund.status == RefundStatus.PAID_OUT
    assert refund.paid_out_by == clerk
    assert refund.completed_at is not None
    assert not refund.needs_attention
    event = refund_events(refund)[-1]
    assert (event.action, event.from_state, event.to_state) == (
        Action.REFUND_PAID_OUT, "awaiting_payout", "paid_out")
    assert (event.actor, event.clinic, event.invoice_id) == (clerk, clinic, invoice.pk)
    assert (event.amount, event.remarks) == (D("5.250"), "handed over at desk")
    # the ledger did not move: the money was counted as refunded when the note was issued
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("5.250")

    # when staff try again, then it is refused and nothing changes
    before = refund_state(refund)
    with refused(PAYOUT_NOT_AWAITING.format(status="paid out")):
        refund_mark_paid_out(refund=refund, actor=clerk)
    assert refund_state(refund) == before


def test_it_refuses_to_mark_a_gateway_refund_paid_out(
        make_invoice, pay, card, clerk, reason, refused, django_capture_on_commit_callbacks):
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="pending_card")
    with django_capture_on_commit_callbacks(execute=True):
        refund = credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                                    actor=clerk).refunds.get()
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING
    before = refund_state(refund)
    with refused(PAYOUT_NOT_AWAITING.format(status="pending")):
        refund_mark_paid_out(refund=refund, actor=clerk)
    assert refund_state(refund) == before


def test_it_refuses_to_mark_paid_out_for_an_outsider(
        make_invoice, pay, clerk, outsider, reason, clinic, refused):
    invoice = make_invoice()
    pay(invoice, "28.700")
    refund = credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                                actor=clerk).refunds.get()
    before = refund_state(refund)
    with refused(access.NOT_A_MEMBER.format(clinic=clinic.name)):
        refund_mark_paid_out(refund=refund, actor=outsider)
    assert refund_state(refund) == before
    assert before["status"] == RefundStatus.AWAITING_PAYOUT and before["paid_out_by"] is None


# -- reconciliation of refunds left pending -------------------------------------------------------

def reconcile():
    out = StringIO()
    call_command("reconcile_refunds", "--older-than", "0", stdout=out)
    return out.getvalue().strip()


def pending_refund(make_invoice, pay, card, clerk, reason, reference):
    """A card refund committed as pending whose gateway call never happened (the commit
    callbacks of a test transaction never run, like a crash between commit and call)."""
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference=reference)
    refund = credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                                actor=clerk).refunds.get()
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == (RefundStatus.PENDING, 0)
    return refund


def test_reconcile_sends_a_refund_left_pending(make_invoice, pay, card, clerk, reason, clinic):
    # given a card refund left pending
    refund = pending_refund(make_invoice, pay, card, clerk, reason, "ch_lost")

    # when the reconciliation runs
    output = reconcile()

    # then the refund was sent and succeeded
    assert output == "Reconciled 1 refund(s): 1 succeeded."
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == (RefundStatus.SUCCEEDED, 1)
    assert refund.gateway_reference.startswith("sbx_re_")
    event = refund_events(refund)[-1]
    assert (event.action, event.from_state, event.to_state, event.clinic) == (
        Action.REFUND_SUCCEEDED, "pending", "succeeded", clinic)
    assert event.client == "gateway:sandbox"

    # when it runs again, then there is nothing left to do and nothing changes
    before = refund_state(refund)
    events_before = AuditEvent.objects.count()
    assert reconcile() == "No pending refund to reconcile."
    assert refund_state(refund) == before
    assert AuditEvent.objects.count() == events_before


def test_reconcile_leaves_a_refund_the_gateway_still_processes_pending(
        make_invoice, pay, card, clerk, reason):
    # given a card refund left pending that the gateway keeps processing
    refund = pending_refund(make_invoice, pay, card, clerk, reason, "pending_slow")
    events_before = AuditEvent.objects.count()

    # when the reconciliation runs, twice
    assert reconcile() == "Reconciled 1 refund(s): 1 pending."
    assert reconcile() == "Reconciled 1 refund(s): 1 pending."

    # then it is still pending, each attempt counted, no state change recorded
    refund.refresh_from_db()
    assert (refund.status, refund.attempts, refund.gateway_reference) == (
        RefundStatus.PENDING, 2, "")
    assert AuditEvent.objects.count() == events_before
    invoice = refund.invoice
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("28.700")


class UnavailableGateway:
    calls = 0

    def refund(self, *, payment, amount, currency, idempotency_key, retry=0):
        type(self).calls += 1
        raise GatewayUnavailable("Connection timed out.")


def test_reconcile_keeps_a_refund_pending_when_the_gateway_is_unavailable(
        make_invoice, pay, card, clerk, reason):
    # given a card refund left pending, and a gateway that cannot be reached
    refund = pending_refund(make_invoice, pay, card, clerk, reason, "ch_unreachable")
    before = refund_state(refund)
    events_before = AuditEvent.objects.count()
    UnavailableGateway.calls = 0

    # when the reconciliation runs
    with override_settings(REFUND_GATEWAYS={
            "sandbox": "tests.test_refund_gateway.UnavailableGateway"}):
        output = reconcile()

    # then no exception escaped, the gateway was tried and the refund is left as it was
    assert UnavailableGateway.calls == 1
    assert output == "Reconciled 1 refund(s): 1 pending."
    assert refund_state(refund) == before
    assert AuditEvent.objects.count() == events_before

    # and once the gateway is back, the next run sends it
    assert reconcile() == "Reconciled 1 refund(s): 1 succeeded."
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED


def test_reconcile_with_nothing_pending_says_so(db):
    assert reconcile() == "No pending refund to reconcile."


# -- the sandbox itself ---------------------------------------------------------------------------

def test_the_sandbox_gives_the_same_reference_for_the_same_key(make_invoice, pay, card):
    invoice = make_invoice()
    payment = pay(invoice, "28.700", method=card, reference="ch_same")
    sandbox = SandboxGateway()

    def send(key, amount="5.000"):
        return sandbox.refund(payment=payment, amount=D(amount), currency="OMR",
                              idempotency_key=key)

    first = send("8f0e4c2a-0000-4000-8000-000000000001")
    again = send("8f0e4c2a-0000-4000-8000-000000000001", amount="5.000")
    other = send("8f0e4c2a-0000-4000-8000-000000000002")
    assert first == again == GatewayRefundResult(status="succeeded", reference=first.reference)
    assert first.reference.startswith("sbx_re_")
    assert other.status == "succeeded" and other.reference != first.reference
