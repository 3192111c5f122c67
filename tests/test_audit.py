"""The audit trail: who, where, when and from which client; append-only in Python and in SQL."""

import datetime
import re
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.utils import Error as DatabaseError
from django.urls import reverse
from django.utils import timezone

from audit.context import audit_context, current
from audit.models import Action, AuditEvent
from audit.services import audit_event_record
from billing.models import Payment
from billing.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS

from .conftest import requires_postgres

D = Decimal


def assert_utc(moment):
    assert moment.tzinfo is not None
    assert moment.utcoffset() == datetime.timedelta(0)


# -- what an event carries -----------------------------------------------------------------------

def test_events_carry_actor_clinic_invoice_utc_time_and_the_audit_context(
        make_invoice, pay, clerk, clinic):
    # given a client and request id set for the work (as a command or the API would)
    started = timezone.now()
    with audit_context(client="cli:seed_demo", request_id="req-42"):
        # when an invoice is created, issued and paid
        invoice = make_invoice(issue=True)
        payment = pay(invoice, "5.000")
    finished = timezone.now()

    # then each of the three events says who, which clinic and invoice, when, and from where
    got = list(AuditEvent.objects.order_by("pk"))
    assert [e.action for e in got] == [Action.INVOICE_CREATED, Action.INVOICE_ISSUED,
                                       Action.PAYMENT_RECORDED]
    for event in got:
        assert (event.actor, event.actor_username) == (clerk, "clerk")
        assert (event.clinic, event.invoice_id) == (clinic, invoice.pk)
        assert (event.client, event.request_id) == ("cli:seed_demo", "req-42")
        assert_utc(event.occurred_at)
        assert started <= event.occurred_at <= finished
        assert event.currency == "OMR"
    assert [e.object_id for e in got] == [str(invoice.pk), str(invoice.pk), str(payment.pk)]
    assert got[2].content_type.model_class() is Payment
    assert [e.amount for e in got] == [D("28.700"), D("28.700"), D("5.000")]
    assert [e.transition for e in got] == [
        "— → draft", "draft → issued", "issued → partially_paid"]


def test_events_outside_any_context_have_no_client_or_request_id(make_invoice):
    make_invoice(issue=False)
    [event] = AuditEvent.objects.all()
    assert (event.client, event.request_id) == ("", "")


def test_audit_context_generates_a_request_id_and_is_undone_afterwards():
    with audit_context(client="api") as ctx:
        assert re.fullmatch(r"[0-9a-f]{32}", ctx.request_id)
        assert current() == ctx
        with audit_context(client="cli", request_id="inner"):
            assert (current().client, current().request_id) == ("cli", "inner")
        assert current() == ctx
    assert (current().client, current().request_id) == ("", "")


# -- append-only in Python -----------------------------------------------------------------------

def event_rows():
    return list(AuditEvent.objects.order_by("pk").values())


def test_an_event_cannot_be_saved_again(make_invoice):
    # given a written event
    make_invoice(issue=False)
    before = event_rows()
    event = AuditEvent.objects.get()
    # when it is changed and saved, then it is refused and the row is unchanged
    event.remarks = "tampered"
    with pytest.raises(PermissionError, match="append-only"):
        event.save()
    assert event_rows() == before


def test_an_event_cannot_be_deleted(make_invoice):
    make_invoice(issue=False)
    before = event_rows()
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.get().delete()
    assert event_rows() == before


@pytest.mark.parametrize("bulk", [
    lambda: AuditEvent.objects.update(remarks="x"),
    lambda: AuditEvent.objects.all().update(remarks="x"),
    lambda: AuditEvent.objects.filter(action=Action.INVOICE_CREATED).update(remarks="x"),
    lambda: AuditEvent.objects.all().delete(),
    lambda: AuditEvent.objects.filter(action=Action.INVOICE_CREATED).delete(),
])
def test_events_cannot_be_changed_or_deleted_in_bulk(make_invoice, bulk):
    make_invoice(issue=True)
    before = event_rows()
    with pytest.raises(PermissionError, match="append-only"):
        bulk()
    assert event_rows() == before


# -- append-only in the database (PostgreSQL trigger) --------------------------------------------

@requires_postgres
@pytest.mark.django_db
def test_the_append_only_trigger_is_installed_on_postgresql():
    # audit/migrations/0002_append_only_trigger.py and 0003_refuse_truncate.py must have run
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger"
            " WHERE tgrelid = 'audit_event'::regclass AND NOT tgisinternal"
        )
        assert sorted(name for (name,) in cursor.fetchall()) == [
            "audit_event_append_only", "audit_event_no_truncate"]


@requires_postgres
@pytest.mark.parametrize("sql", [
    "UPDATE audit_event SET remarks = 'x'",
    "DELETE FROM audit_event",
])
def test_the_database_refuses_to_change_or_delete_events(make_invoice, sql):
    # given events in the table
    make_invoice(issue=True)
    before = event_rows()
    assert len(before) == 2
    # when SQL bypasses the model, then PostgreSQL refuses it
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(sql)
    # and nothing changed
    assert event_rows() == before


@requires_postgres
@pytest.mark.parametrize("sql", [
    "TRUNCATE audit_event",
    "TRUNCATE audit_event RESTART IDENTITY CASCADE",
])
def test_the_database_refuses_to_truncate_the_events(make_invoice, sql):
    make_invoice(issue=True)
    before = event_rows()
    # a session that did not opt in, as every session but a test run's
    with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as after the test's rows were committed
        cursor.execute("SET LOCAL audit.allow_truncate = 'off'")
        cursor.execute(sql)
    assert event_rows() == before


# -- the web middleware --------------------------------------------------------------------------

def test_every_response_carries_a_request_id(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert client.get(reverse("login"))["X-Request-ID"] != response["X-Request-ID"]


def test_a_well_formed_request_id_from_the_caller_is_kept(client):
    response = client.get(reverse("login"), headers={"X-Request-ID": "lb-7f3a.9:1"})
    assert response["X-Request-ID"] == "lb-7f3a.9:1"


@pytest.mark.parametrize("given", ["has spaces", "x" * 65, "<script>", "é"])
def test_a_malformed_request_id_is_replaced(client, given):
    response = client.get(reverse("login"), headers={"X-Request-ID": given})
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def payment_post(invoice, cash, amount):
    return {"method": cash.pk, "amount": amount, "reference": "R-9",
            "received_at": "2030-01-02T09:30"}


def test_events_written_during_a_web_request_carry_web_and_its_request_id(
        client, make_invoice, clerk, cash):
    # given an issued invoice and the clerk logged in
    invoice = make_invoice(issue=True)
    client.force_login(clerk)

    # when a payment is posted through the payment screen
    response = client.post(reverse("billing:payment_create", args=[invoice.pk]),
                           payment_post(invoice, cash, "10.000"))

    # then the payment event carries the client "web" and the request id of the response
    assert response.status_code == 302
    event = AuditEvent.objects.get(action=Action.PAYMENT_RECORDED)
    assert event.client == "web"
    assert event.request_id == response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", event.request_id)
    assert event.actor == clerk
    # and the events written before, outside any request, carry neither
    assert set(AuditEvent.objects.exclude(pk=event.pk).values_list("client", "request_id")) == {
        ("", "")}


def test_a_web_event_keeps_the_callers_request_id(client, make_invoice, clerk, cash):
    invoice = make_invoice(issue=True)
    client.force_login(clerk)
    response = client.post(reverse("billing:payment_create", args=[invoice.pk]),
                           payment_post(invoice, cash, "1.000"),
                           headers={"X-Request-ID": "trace-123"})
    assert response["X-Request-ID"] == "trace-123"
    event = AuditEvent.objects.get(action=Action.PAYMENT_RECORDED)
    assert (event.client, event.request_id) == ("web", "trace-123")


# -- what an event may say -----------------------------------------------------------------------

def test_an_unknown_action_is_refused_before_anything_is_written(make_invoice, clerk, clinic):
    # given an invoice
    invoice = make_invoice()
    before = AuditEvent.objects.count()

    # when an event names an action the ledger does not know, then nothing is written
    with pytest.raises(ValueError):
        audit_event_record(actor=clerk, clinic=clinic, invoice=invoice, obj=invoice,
                           action="invoice.misplaced")
    assert AuditEvent.objects.count() == before


def test_the_audit_amount_column_is_as_wide_as_the_ledgers_money():
    # the audit app imports no other app, so it states the width itself; the two must agree
    field = AuditEvent._meta.get_field("amount")
    assert (field.max_digits, field.decimal_places) == (MONEY_MAX_DIGITS, MONEY_DECIMAL_PLACES)
