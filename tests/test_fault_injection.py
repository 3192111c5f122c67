"""Fault injection (PostgreSQL): keyed full refunds from several API clients at once, while a
saboteur terminates and cancels the application's database sessions under them. Every client
retries a failed call with the same Idempotency-Key until it is answered; in the end each
invoice was refunded exactly once, by the credit note its answer names, the numbering has no
gap, every retry replays that answer, and no answer ever showed the driver's or Python's text."""

import contextlib
import json
import logging
import random
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.db.models import Sum
from django.test import Client

from api.models import IdempotencyKey
from audit.models import Action, AuditEvent
from billing.faults import TEMPORARY_PROBLEM
from billing.models import Invoice, NumberSeries, Payment
from refunds.models import CreditNote, Refund

from .api_helpers import gql_response
from .conftest import requires_postgres

D = Decimal

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

REFUND = """
mutation invoiceRefund($invoiceId: ID!, $disputeReasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
    creditNote { id number amount amountUnapplied creditedInvoiceId }
    errors
  }
}"""

INVOICES = 16
CLIENTS = 4
MAX_ATTEMPTS = 30
SABOTAGE_PAUSE = (0.01, 0.02)  # seconds between two blows (each at one client of four)
SABOTAGE_SECONDS = 3
MIN_FAULTS = 5  # fewer, and the test would prove little
JOIN_TIMEOUT = 50
# The application's sessions carry this name (and their client's number): the saboteur hits
# them and nothing else.
APP_SESSIONS = "fault-injection-burst"
INTERNALS = ("terminating connection", "canceling statement", "psycopg", "Traceback",
             "OperationalError", "InterfaceError", "connection already closed",
             "server closed the connection", "administrator command")
DRIVER_MESSAGES = ("terminating connection", "canceling statement", "server closed the connection",
                   "connection already closed", "the connection is closed", "connection is lost")


@pytest.fixture
def paid_invoices(make_invoice, pay):
    """Fully paid invoices of 28.700 OMR: in one payment, or (every third) in two."""
    invoices = []
    for index in range(INVOICES):
        invoice = make_invoice()
        if index % 3 == 2:
            pay(invoice, "20.000")
            pay(invoice, "8.700")
        else:
            pay(invoice, "28.700")
        invoices.append(invoice)
    return invoices


def _admin_dsn() -> str:
    db = settings.DATABASES["default"]
    dsn = (f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} "
           f"user={db['USER']} dbname=postgres")
    return f"{dsn} password={db['PASSWORD']}" if db.get("PASSWORD") else dsn


def _own_backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class Saboteur(threading.Thread):
    """Every 10 to 20 ms, for SABOTAGE_SECONDS at most, terminates or cancels the session of
    one client picked at random (if it has one now) in the test database: never its own
    session, never the test's. A client's session is hit at the same pace however many others
    have finished, so the last one still gets through."""

    def __init__(self, *, database: str, spared_pid: int):
        super().__init__(daemon=True)
        self.database = database
        self.spared_pid = spared_pid
        self.stop = threading.Event()
        self.blows = {"pg_terminate_backend": 0, "pg_cancel_backend": 0}
        self.error = None

    def run(self):
        try:
            with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
                own_pid = admin.info.backend_pid
                until = time.monotonic() + SABOTAGE_SECONDS
                while (not self.stop.wait(random.uniform(*SABOTAGE_PAUSE))
                       and time.monotonic() < until):
                    blow = random.choice(list(self.blows))
                    hit = admin.execute(
                        f"SELECT {blow}(pid) FROM pg_stat_activity "  # noqa: S608 - a fixed name
                        "WHERE datname = %s AND pid <> %s AND pid <> %s "
                        "AND application_name = %s",
                        [self.database, own_pid, self.spared_pid,
                         session_name(random.randrange(CLIENTS))],
                    ).fetchall()
                    self.blows[blow] += sum(1 for (done,) in hit if done)
        except BaseException as error:  # reported by the test
            self.error = error


def session_name(client_index: int) -> str:
    return f"{APP_SESSIONS}-{client_index}"


def _name_sessions(client_index: int):
    """This thread's database sessions carry the client's session name (its own connection
    settings: the test's connection is left as it is)."""
    options = {**connection.settings_dict.get("OPTIONS", {}),
               "application_name": session_name(client_index)}
    connection.settings_dict = {**connection.settings_dict, "OPTIONS": options}


def _refund_until_answered(client, token, invoice, reason, attempts: list):
    """Call with one key until the call is answered (not 5xx, not a lost connection). The
    thread's connection is checked at each request's start and end, as a server does (the test
    client does not)."""
    variables = {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)}
    key = f"refund-{invoice.pk}"
    for _ in range(MAX_ATTEMPTS):
        close_old_connections()
        try:
            response = gql_response(client, token, REFUND, variables, HTTP_IDEMPOTENCY_KEY=key)
        except Exception as error:  # a fault that reached the client: retried as well
            attempts.append((invoice.pk, None, repr(error), None))
        else:
            attempts.append((invoice.pk, response.status_code, response.content.decode(),
                             response["X-Request-ID"]))
            if response.status_code < 500:
                return
        finally:
            close_old_connections()
        time.sleep(random.uniform(0.005, 0.02))


def test_keyed_refunds_survive_sessions_terminated_and_cancelled_under_them(
        token, paid_invoices, reason, caplog):
    caplog.set_level(logging.ERROR, logger="billing.faults")
    database = connection.settings_dict["NAME"]
    saboteur = Saboteur(database=database, spared_pid=_own_backend_pid())
    attempts_of = [[] for _ in range(CLIENTS)]
    crashes = []

    def client_thread(index):
        try:
            _name_sessions(index)
            client = Client()
            for invoice in paid_invoices[index::CLIENTS]:
                _refund_until_answered(client, token, invoice, reason, attempts_of[index])
        except BaseException as error:  # reported by the assertions below
            crashes.append(repr(error))
        finally:
            with contextlib.suppress(Exception):  # a session the saboteur already ended
                connection.close()

    clients = [threading.Thread(target=client_thread, args=(i,), daemon=True)
               for i in range(CLIENTS)]
    started = time.monotonic()
    saboteur.start()
    for thread in clients:
        thread.start()
    deadline = started + JOIN_TIMEOUT
    for thread in clients:
        thread.join(timeout=max(0, deadline - time.monotonic()))
    saboteur.stop.set()
    saboteur.join(timeout=10)
    elapsed = time.monotonic() - started

    assert [i for i, t in enumerate(clients) if t.is_alive()] == [], "a client hung"
    assert not saboteur.is_alive()
    assert saboteur.error is None, repr(saboteur.error)
    assert crashes == []
    attempts = [attempt for per_client in attempts_of for attempt in per_client]
    faults = [a for a in attempts if a[1] is None or a[1] >= 500]
    lost = [a for a in attempts if a[1] is None]
    most = max(sum(1 for a in attempts if a[0] == invoice.pk) for invoice in paid_invoices)
    records = [record for record in caplog.records if record.name == "billing.faults"]
    logged = [record.exc_info[1] for record in records]
    cancelled = sum(1 for error in logged if "canceling statement" in str(error))
    print(f"\n{len(attempts)} calls, {len(faults)} faults ({cancelled} cancelled statements, "
          f"{len(lost)} raised to the client), at most {most} calls for one invoice, "
          f"saboteur {saboteur.blows}, {elapsed:.1f} s")

    # the saboteur really got in the way, and every fault was answered as a temporary one
    assert len(faults) >= MIN_FAULTS, (faults, saboteur.blows)
    assert lost == []
    for _, status, body, _ in faults:
        assert status == 503
        assert json.loads(body) == {"errors": [{"message": TEMPORARY_PROBLEM}]}
    shown = [(pk, status, body) for pk, status, body, _ in attempts
             if any(text.lower() in body.lower() for text in INTERNALS)]
    assert shown == []
    # ... and each was logged in full under its request id (a request may log two: its
    # connection lost, then the new one it opened to clean up lost as well), the driver's own
    # words in the log, not in the answer
    assert {record.args[0] for record in records} == {request_id for *_, request_id in faults}
    assert all(isinstance(error, OperationalError | InterfaceError) for error in logged), logged
    assert all(any(text in str(error) for text in DRIVER_MESSAGES) for error in logged), logged

    # each invoice was answered once with its refund, after however many faults
    answers = {}
    for pk, status, body, _ in attempts:
        if status is not None and status < 500:
            assert pk not in answers, f"invoice {pk} answered twice"
            answers[pk] = (status, body)
    assert sorted(answers) == sorted(invoice.pk for invoice in paid_invoices)
    for invoice in paid_invoices:
        status, body = answers[invoice.pk]
        assert status == 200, body
        payload = json.loads(body)["data"]["invoiceRefund"]
        assert payload["errors"] == [], payload
        reported = payload["creditNote"]

        # exactly one credit note, the one the answer reports, paying back what was paid
        note = CreditNote.objects.get(invoice=invoice)
        assert (reported["id"], reported["number"]) == (str(note.pk), note.number)
        assert reported["creditedInvoiceId"] == str(invoice.pk)
        invoice = Invoice.objects.get(pk=invoice.pk)
        assert invoice.amount_paid == D("28.700")
        assert D(reported["amount"]) == note.amount == invoice.amount_paid
        assert D(reported["amountUnapplied"]) == note.amount_unapplied == invoice.amount_paid
        assert invoice.amount_refunded == invoice.amount_paid
        assert Refund.objects.filter(invoice=invoice).aggregate(
            total=Sum("amount"))["total"] == invoice.amount_paid
        for payment in Payment.objects.filter(invoice=invoice):
            assert payment.amount_refunded == payment.amount

    # gapless numbering, one audit event and one kept answer per refund
    notes = CreditNote.objects.filter(clinic=paid_invoices[0].clinic)
    assert sorted(notes.values_list("sequence", flat=True)) == list(range(1, INVOICES + 1))
    assert notes.values("number").distinct().count() == INVOICES
    assert NumberSeries.objects.get(clinic=paid_invoices[0].clinic,
                                    kind=NumberSeries.Kind.CREDIT_NOTE).last_value == INVOICES
    assert AuditEvent.objects.filter(action=Action.CREDIT_NOTE_ISSUED).count() == INVOICES
    assert IdempotencyKey.objects.count() == INVOICES
    assert set(IdempotencyKey.objects.values_list("status_code", flat=True)) == {200}

    # every keyed retry now replays that answer and changes nothing
    client = Client()
    for invoice in paid_invoices:
        replay = gql_response(client, token, REFUND,
                              {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)},
                              HTTP_IDEMPOTENCY_KEY=f"refund-{invoice.pk}")
        assert replay.status_code == 200
        assert replay["Idempotent-Replayed"] == "true"
        assert replay.content.decode() == answers[invoice.pk][1]
    assert CreditNote.objects.count() == INVOICES
    assert Refund.objects.aggregate(total=Sum("amount"))["total"] == D("28.700") * INVOICES
