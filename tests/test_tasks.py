"""The Celery tasks, run in-process: the retry policy of a gateway refund (no answer: tried again
later; declined: final), a task for a refund no longer pending does nothing, notification
emails, and the periodic jobs. The same run with no broker (eager) behaves as before queues."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from celery.exceptions import Retry
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from honcho.environ import parse_procfile
from kombu.exceptions import OperationalError as KombuOperationalError

from api.models import IdempotencyKey
from api.tasks import idempotency_keys_purge
from approvals import notifications
from approvals.services import refund_request_create
from approvals.tasks import notification_send
from billing.breakdown import CreditLineInput
from refunds import tasks
from refunds.gateways import GatewayRefundResult, GatewayUnavailable
from refunds.models import Refund, RefundStatus
from refunds.services import credit_note_create

from .factories import PaymentMethodFactory, UserFactory

D = Decimal
CALLS: list[str] = []


class Answering:
    """A gateway that answers what the test says, and notes every call's idempotency key."""

    answer: GatewayRefundResult | Exception = GatewayRefundResult(status="succeeded",
                                                                   reference="re_1")

    def refund(self, *, payment, amount, currency, idempotency_key, retry=0):
        CALLS.append(idempotency_key)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def gateway(clinic, monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(Answering, "answer", Answering.answer)
    with override_settings(REFUND_GATEWAYS={"test": f"{__name__}.Answering"}):
        yield Answering


@pytest.fixture
def pending_refund(make_invoice, pay, clinic, clerk, reason, gateway):
    """A full refund to a gateway payment, created and committed but not yet sent."""
    card = PaymentMethodFactory(clinic=clinic, name="Card", kind="gateway", gateway="test")
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="ch_1")
    note = credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)
    return Refund.objects.get(credit_note=note)


@pytest.fixture
def as_worker(monkeypatch):
    """Run refund_send as a worker would (not eagerly); a retry is recorded, not queued."""
    retries = []

    def retry(*, exc, countdown):
        retries.append((type(exc), countdown))
        return Retry(exc=exc, when=countdown)

    monkeypatch.setattr(tasks.refund_send, "retry", retry)

    def run(refund_id, *, retries_so_far=0):
        tasks.refund_send.push_request(is_eager=False, retries=retries_so_far)
        try:
            return tasks.refund_send.run(refund_id)
        finally:
            tasks.refund_send.pop_request()

    run.retries = retries
    return run


def test_a_refund_is_queued_after_commit_and_sent_by_its_task(
        pending_refund, gateway, django_capture_on_commit_callbacks, make_invoice, pay, clinic,
        clerk, reason):
    # the fixture's refund was created outside a captured commit: it is still pending
    assert pending_refund.status == RefundStatus.PENDING and CALLS == []
    card = pending_refund.payment.method
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="ch_2")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        note = credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)

    refund = Refund.objects.get(credit_note=note)
    assert len(callbacks) == 1
    assert refund.status == RefundStatus.SUCCEEDED
    assert [str(refund.idempotency_key)] == CALLS


def test_no_answer_from_the_gateway_is_tried_again_later_with_a_growing_delay(
        pending_refund, gateway, as_worker):
    gateway.answer = GatewayUnavailable("timed out after 20 s")

    with pytest.raises(Retry):
        as_worker(pending_refund.pk)
    with pytest.raises(Retry):
        as_worker(pending_refund.pk, retries_so_far=3)

    assert as_worker.retries == [(GatewayUnavailable, 10), (GatewayUnavailable, 80)]
    pending_refund.refresh_from_db()
    assert pending_refund.status == RefundStatus.PENDING
    assert [str(pending_refund.idempotency_key)] * 2 == CALLS  # the same key each time


def test_the_delay_between_attempts_stops_growing_at_ten_minutes():
    assert [tasks.retry_delay(n) for n in range(8)] == [10, 20, 40, 80, 160, 320, 600, 600]


def test_a_declined_refund_is_final_and_not_tried_again(pending_refund, gateway, as_worker):
    gateway.answer = GatewayRefundResult(status="failed", failure_reason="Card closed")

    assert as_worker(pending_refund.pk) == RefundStatus.FAILED

    assert as_worker.retries == []
    pending_refund.refresh_from_db()
    assert (pending_refund.status, pending_refund.failure_reason) == (
        RefundStatus.FAILED, "Card closed")


@pytest.mark.parametrize("status", [RefundStatus.SUCCEEDED, RefundStatus.FAILED])
def test_a_task_for_a_refund_no_longer_pending_does_nothing(
        pending_refund, gateway, as_worker, status):
    gateway.answer = GatewayRefundResult(status=status, reference="re_9")
    as_worker(pending_refund.pk)
    CALLS.clear()

    # when the same task is delivered again (a worker killed before it acknowledged it)
    assert as_worker(pending_refund.pk) == status

    # then the gateway is not called and nothing changes
    assert CALLS == []
    assert Refund.objects.get(pk=pending_refund.pk).attempts == 1


def test_with_no_broker_no_answer_leaves_the_refund_pending_for_reconcile(
        pending_refund, gateway):
    gateway.answer = GatewayUnavailable("timed out")

    assert tasks.refund_send.delay(pending_refund.pk).get() == "pending"

    pending_refund.refresh_from_db()
    assert pending_refund.status == RefundStatus.PENDING


def test_reconcile_sends_again_only_refunds_pending_beyond_the_grace_period(
        pending_refund, gateway):
    with override_settings(REFUND_PENDING_GRACE_SECONDS=3600):
        assert tasks.refunds_reconcile.delay().get() == {}
    assert CALLS == []

    with override_settings(REFUND_PENDING_GRACE_SECONDS=0):
        assert tasks.refunds_reconcile.delay().get() == {RefundStatus.SUCCEEDED: 1}
    assert Refund.objects.get(pk=pending_refund.pk).status == RefundStatus.SUCCEEDED


def test_reconcile_goes_on_when_the_gateway_gives_no_answer(pending_refund, gateway):
    gateway.answer = GatewayUnavailable("timed out")
    with override_settings(REFUND_PENDING_GRACE_SECONDS=0):
        assert tasks.refunds_reconcile.delay().get() == {RefundStatus.PENDING: 1}


def test_the_daily_purge_forgets_only_old_idempotency_keys(db):
    old = IdempotencyKey.objects.create(client="app:1", key="old", request_hash="x",
                                        status_code=200, response_body="{}")
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    IdempotencyKey.objects.create(client="app:1", key="new", request_hash="y", status_code=200,
                                  response_body="{}")

    assert idempotency_keys_purge.delay().get() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_a_notification_is_sent_by_its_task_after_commit(
        approval_clinic, make_invoice, clerk, approver, mailoutbox,
        django_capture_on_commit_callbacks):
    invoice = make_invoice()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)

    assert len(callbacks) == 1
    assert [message.to for message in mailoutbox] == [[approver.email]]


def test_a_mail_server_that_cannot_be_reached_is_tried_again_later(
        approval_clinic, make_invoice, clerk, approver, monkeypatch,
        django_capture_on_commit_callbacks):
    invoice = make_invoice()
    with django_capture_on_commit_callbacks(execute=False):
        request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)

    def down(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    retries = []
    monkeypatch.setattr(notifications, "send_mail", down)
    monkeypatch.setattr(notification_send, "retry",
                        lambda *, exc, countdown: retries.append(countdown) or Retry(exc=exc))
    notification_send.push_request(is_eager=False, retries=1)
    try:
        with pytest.raises(Retry):
            notification_send.run("request_submitted", request.pk)
    finally:
        notification_send.pop_request()
    assert retries == [120]


def test_the_credit_lines_of_a_refund_are_sent_once_whatever_the_queue(
        make_invoice, pay, clinic, clerk, reason, gateway, django_capture_on_commit_callbacks):
    # a partial refund to a gateway payment: one refund, one call
    card = PaymentMethodFactory(clinic=clinic, name="Card", kind="gateway", gateway="test")
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="ch_3")
    line = invoice.lines.order_by("position").first()
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("20.000"))],
                                  dispute_reason=reason, actor=clerk)
    assert len(CALLS) == 1
    assert note.refunds.get().status == RefundStatus.SUCCEEDED


# -- what staff see while a refund is on its way ---------------------------------------------------

def test_a_queued_gateway_refund_shows_as_sending_until_its_answer_lands(
        client, clerk, pending_refund, gateway):
    client.force_login(clerk)
    invoice_page = reverse("desk:invoice_detail", args=[pending_refund.invoice_id])

    for page in (client.get(invoice_page), client.get(reverse("home"))):
        assert "Sending…" in page.content.decode()

    tasks.refund_send.delay(pending_refund.pk)

    page = client.get(invoice_page).content.decode()
    assert "Sending…" not in page and "Succeeded" in page
    assert "Sending…" not in client.get(reverse("home")).content.decode()


def test_the_admin_lists_refunds_pending_beyond_the_grace_period(
        client, clinic, pending_refund, gateway):
    admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    stuck = reverse("admin:refunds_refund_changelist") + "?sending=stuck"

    with override_settings(REFUND_PENDING_GRACE_SECONDS=3600):
        assert client.get(stuck).context["cl"].result_count == 0
    with override_settings(REFUND_PENDING_GRACE_SECONDS=0):
        assert list(client.get(stuck).context["cl"].result_list) == [pending_refund]


def test_the_procfile_runs_the_web_a_worker_and_beat():
    procfile = parse_procfile((Path(__file__).resolve().parent.parent / "Procfile").read_text())

    assert set(procfile.processes) == {"web", "worker", "beat"}
    assert procfile.processes["web"].startswith("gunicorn config.wsgi -c config/gunicorn.py")
    assert procfile.processes["worker"].startswith("celery -A config worker")
    assert procfile.processes["beat"].startswith("celery -A config beat")


def test_a_broker_that_cannot_be_reached_leaves_the_refund_pending_for_reconcile(
        make_invoice, pay, clinic, clerk, reason, gateway, monkeypatch,
        django_capture_on_commit_callbacks, caplog):
    def broker_down(*args):
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(tasks.refund_send, "delay", broker_down)
    card = PaymentMethodFactory(clinic=clinic, name="Card", kind="gateway", gateway="test")
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="ch_4")

    # the refund is made and the call returns; only the queueing failed, and says so
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)

    refund = note.refunds.get()
    assert refund.status == RefundStatus.PENDING
    assert "the task broker cannot be reached" in caplog.text
    # and the periodic job sends it once the grace period has passed
    with override_settings(REFUND_PENDING_GRACE_SECONDS=0):
        assert tasks.refunds_reconcile.delay().get() == {RefundStatus.SUCCEEDED: 1}
