"""A real Celery worker, in a subprocess, against the Redis on this machine and the test
database: an API refund to a slow gateway returns at once and completes in the background; a
worker killed with SIGKILL mid-call loses nothing and doubles nothing."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app as celery_app
from refunds.models import Refund, RefundStatus, SandboxGatewayRefund

from .api_helpers import gql
from .conftest import requires_postgres, requires_redis
from .factories import PaymentMethodFactory

ROOT = Path(__file__).resolve().parent.parent
BROKER = "redis://127.0.0.1:6379/14"
REFUND = """mutation($invoiceId: ID!, $reasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $reasonId) {
    creditNote { number } errors } }"""


pytestmark = [
    requires_postgres,
    requires_redis,
    pytest.mark.django_db(transaction=True),  # the worker sees only what is committed
]


def forget_connections():
    """Connect afresh, and route by the settings just changed: the app caches its producer pool
    and its queues (`amqp`) at first use, which other tests in this process may have made."""
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)


@pytest.fixture
def queue():
    """A queue of this test's own on Redis, with the web side queueing to it (not eagerly)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    saved = {key: celery_app.conf[key] for key in
             ("broker_url", "task_always_eager", "task_default_queue")}
    celery_app.conf.update(broker_url=BROKER, task_always_eager=False, task_default_queue=name)
    forget_connections()
    yield name
    celery_app.conf.update(saved)
    forget_connections()


@pytest.fixture
def workers(queue):
    """workers.start() → a worker process consuming the test's queue; all are killed at the end."""
    started = []
    database = connection.settings_dict

    def start():
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:"
                            f"{database['PORT']}/{database['NAME']}",
            "CELERY_BROKER_URL": BROKER,
            "CELERY_QUEUE": queue,
            # a message a killed worker never acknowledged goes to another after this long
            "CELERY_VISIBILITY_TIMEOUT_SECONDS": "5",
            "CELERY_RESTORE_INTERVAL_SECONDS": "1",
        }
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "--loglevel=INFO", "-n", f"{queue}-{len(started)}@%h", "-Q", queue],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        started.append(process)
        deadline = time.monotonic() + 60
        for line in iter(process.stdout.readline, b""):
            if b"ready." in line:
                return process
            if time.monotonic() > deadline:
                break
        raise AssertionError("the Celery worker did not start")

    workers = type("Workers", (), {"start": staticmethod(start)})
    yield workers
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for(condition, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"still waiting after {seconds} s for {what}")


@pytest.fixture
def slow_card_invoice(clinic, make_invoice, pay):
    card = PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                                gateway="sandbox")
    invoice = make_invoice()
    pay(invoice, "28.700", method=card, reference="slow_ch_1")
    return invoice


def refund_through_the_api(client, token, invoice, reason) -> tuple[float, Refund]:
    started = time.monotonic()
    body = gql(client, token, REFUND, {"invoiceId": str(invoice.pk),
                                       "reasonId": str(reason.pk)})
    elapsed = time.monotonic() - started
    assert body["data"]["invoiceRefund"]["errors"] == [], body
    return elapsed, Refund.objects.get(invoice=invoice)


def test_a_refund_to_a_slow_gateway_returns_at_once_and_completes_in_the_background(
        client, token, reason, slow_card_invoice, workers):
    workers.start()

    elapsed, refund = refund_through_the_api(client, token, slow_card_invoice, reason)

    # the web request did not wait for the gateway's 3 seconds
    assert elapsed < 1.5, f"the API answered in {elapsed:.2f} s"
    assert refund.status == RefundStatus.PENDING
    wait_for(lambda: Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED,
             seconds=30, what="the worker to record the gateway's answer")
    books = SandboxGatewayRefund.objects.get(idempotency_key=str(refund.idempotency_key))
    assert (books.calls, books.refunds) == (1, 1)


def test_a_worker_killed_mid_call_loses_nothing_and_doubles_nothing(
        client, token, reason, slow_card_invoice, workers):
    first = workers.start()
    _, refund = refund_through_the_api(client, token, slow_card_invoice, reason)
    key = str(refund.idempotency_key)

    # when the worker is killed while the gateway is still working on the call
    wait_for(lambda: SandboxGatewayRefund.objects.filter(idempotency_key=key, calls=1).exists(),
             seconds=30, what="the first call to reach the gateway")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PENDING

    # then another worker is given the task again and the refund lands, once
    workers.start()
    wait_for(lambda: Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED,
             seconds=60, what="the task to be delivered again and carried out")
    books = SandboxGatewayRefund.objects.get(idempotency_key=key)
    assert books.calls == 2  # the gateway was asked twice, with the same key
    assert books.refunds == 1  # and refunded once
    assert Refund.objects.filter(invoice=slow_card_invoice).count() == 1
