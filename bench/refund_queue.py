"""How long an API refund to a slow gateway keeps the web request: queued (Celery, Redis, a
worker) against eager (no broker: the gateway is called in the request, after commit).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_billing python -m bench.refund_queue

Makes its own database (`<name>_queue_bench`, dropped and made afresh), with the demo data and
BENCH_REFUNDS (default 10) invoices per mode of the demo's AUSTIN clinic, each paid by online
card through the sandbox gateway with a `slow…` reference (SANDBOX_SLOW_SECONDS, 3 s). Then
`invoiceRefund` for each, through Django's test client with production settings (the
application's own time, without HTTP): first eager, then queued to a worker started for the
run on Redis (BENCH_BROKER_URL, default redis://127.0.0.1:6379/12, a queue of its own). Prints
the median, 95th percentile and worst request of each mode, their ratio, and how long the queued
refunds took to land; then one JSON line with every figure.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from decimal import Decimal

from . import load as loader

REFUND = """mutation($invoiceId: ID!, $reasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $reasonId) {
    creditNote { number } errors } }"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to the PostgreSQL server, as for make bench.")
    refunds = int(os.environ.get("BENCH_REFUNDS", "10"))
    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    url = loader.bench_database_url(base, "_queue_bench")
    loader.recreate_database(url)
    loader.migrate(url)
    env = loader.django_env(url, DJANGO_ALLOWED_HOSTS="testserver", CELERY_BROKER_URL=broker,
                            CELERY_QUEUE=queue)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from audit.context import audit_context
    from billing.models import Account, Clinic, DisputeReason, PaymentMethod, Service
    from billing.services import LineInput, invoice_create, payment_record
    from config.celery import app as celery_app
    from refunds.models import Refund, RefundStatus

    from .django_side import api_token

    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
    clinic = Clinic.objects.get(code="AUSTIN")
    clerk = get_user_model().objects.get(username="austin_clerk")
    card = PaymentMethod.objects.get(clinic=clinic, name="Online card")
    service = Service.objects.filter(clinic=clinic).order_by("code").first()
    account = Account.objects.filter(clinic=clinic).order_by("number").first()
    reason = DisputeReason.objects.filter(is_active=True).order_by("pk").first()
    invoices = []
    with audit_context(client="bench:refund_queue"):
        for n in range(2 * refunds):
            invoice = invoice_create(clinic=clinic, account=account, actor=clerk, issue=True,
                                     lines=[LineInput(service=service, quantity=Decimal(1))])
            payment_record(invoice=invoice, method=card, amount=invoice.total, actor=clerk,
                           reference=f"slow_bench_{n}")
            invoices.append(invoice)
    client = Client()
    token = api_token(client, "austin_clerk", "billing:read billing:write")

    def refund(invoice) -> float:
        started = time.perf_counter()
        response = client.post("/graphql/", json.dumps({"query": REFUND, "variables": {
            "invoiceId": str(invoice.pk), "reasonId": str(reason.pk)}}),
            content_type="application/json", secure=True,
            HTTP_AUTHORIZATION=f"Bearer {token}")
        seconds = time.perf_counter() - started
        errors = response.json()["data"]["invoiceRefund"]["errors"]
        if errors:
            raise RuntimeError(f"invoiceRefund refused: {errors}")
        return seconds

    def route(*, eager: bool) -> None:
        celery_app.conf.update(task_always_eager=eager, broker_url=broker,
                               task_default_queue=queue)
        celery_app._pool = None
        celery_app.__dict__.pop("amqp", None)

    # eager: the gateway's answer is waited for inside each request
    route(eager=True)
    eager = [refund(invoice) for invoice in invoices[:refunds]]

    # queued: a worker of the run's own takes them
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--loglevel=WARNING", "-Q", queue, "-n", f"{queue}@%h"],
        cwd=loader.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        time.sleep(5)  # the worker connects; the requests below do not wait for it anyway
        route(eager=False)
        started = time.perf_counter()
        queued = [refund(invoice) for invoice in invoices[refunds:]]
        pending = Refund.objects.filter(invoice__in=invoices[refunds:])
        deadline = time.monotonic() + 60 + 5 * refunds
        while pending.exclude(status=RefundStatus.SUCCEEDED).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the queued refunds did not all land")
            time.sleep(0.2)
        landed = time.perf_counter() - started
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)

    rows = {}
    for mode, times in (("eager", eager), ("queued", queued)):
        rows[mode] = {"n": len(times), "median_ms": statistics.median(times) * 1000,
                      "p95_ms": percentile(times, 0.95) * 1000, "max_ms": max(times) * 1000}
    ratio = rows["queued"]["p95_ms"] / rows["eager"]["p95_ms"]
    print(f"invoiceRefund to a gateway that answers after 3 s, {refunds} refunds per mode")
    print(f"{'mode':8} {'median':>10} {'p95':>10} {'worst':>10}")
    for mode, row in rows.items():
        print(f"{mode:8} {row['median_ms']:8.1f}ms {row['p95_ms']:8.1f}ms {row['max_ms']:8.1f}ms")
    print(f"queued p95 / eager p95: {ratio:.3f}; the {refunds} queued refunds all landed "
          f"{landed:.1f} s after the first request (one worker process, one at a time); "
          f"load average {os.getloadavg()[0]:.2f}.")
    print(json.dumps({"refunds": refunds, "rows": rows, "p95_ratio": ratio,
                      "queued_landed_s": landed}, separators=(",", ":")))


if __name__ == "__main__":
    main()
