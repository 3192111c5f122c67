"""Faults on our side (a dropped connection, a cancelled statement, a bug) reach API clients and
staff as one plain sentence, never the driver's or Python's text, which is logged in full with
the request id. A request that met one changed nothing: HTTP 503 says a retry may succeed, 500
that it will not; an Idempotency-Key never keeps either, so the retry with the same key is
carried out once. A business refusal is not a fault: it keeps its own message and HTTP 200."""

import json
import logging
from decimal import Decimal

import pytest
from django.db import DatabaseError, InterfaceError, OperationalError, ProgrammingError
from django.urls import reverse
from django.utils.html import escape

from api.models import IdempotencyKey
from billing.faults import TEMPORARY_PROBLEM, UNEXPECTED_PROBLEM
from billing.models import Payment
from billing.rules import NOTHING_PAID
from refunds.models import CreditNote

from .api_helpers import (
    api_state,
    api_token,
    gql_response,
    scope_message,
)
from .conftest import ledger_state

D = Decimal

DRIVER_TEXT = "terminating connection due to administrator command"
SECRET = "secret internals"
# What a client or a member of staff must never be shown.
INTERNALS = (DRIVER_TEXT, SECRET, "terminating connection", "OperationalError",
             "InterfaceError", "ProgrammingError", "RuntimeError", "DatabaseError", "psycopg",
             "Traceback", 'File "')

REFUND = """
mutation invoiceRefund($invoiceId: ID!, $disputeReasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
    creditNote { id number amount }
    errors
  }
}"""
TWO_REFUNDS = """
mutation twoRefunds($first: ID!, $second: ID!, $reason: ID!) {
  first: invoiceRefund(invoiceId: $first, disputeReasonId: $reason) {
    creditNote { id number amount }
    errors
  }
  second: invoiceRefund(invoiceId: $second, disputeReasonId: $reason) {
    creditNote { id number amount }
    errors
  }
}"""
CLINICS_AND_INVOICE = """
query clinicsAndInvoice($id: ID!) {
  clinics { id code }
  invoice(id: $id) { id number }
}"""

pytestmark = pytest.mark.django_db


# -- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture
def paid_invoice(make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    return invoice


@pytest.fixture
def fault_log(caplog):
    """The records logged on billing.faults during the test."""
    caplog.set_level(logging.ERROR, logger="billing.faults")

    def records():
        return [record for record in caplog.records if record.name == "billing.faults"]

    return records


def refund_vars(invoice, reason):
    return {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)}


def refund(client, token, invoice, reason, **extra):
    return gql_response(client, token, REFUND, refund_vars(invoice, reason), **extra)


def failing(error: BaseException, *, times: int | None = None, then=None):
    """A stand-in that raises `error` (the first `times` calls, or every call), then calls
    `then` with the same arguments. `.calls` counts the calls."""

    def stand_in(*args, **kwargs):
        stand_in.calls += 1
        if times is None or stand_in.calls <= times:
            raise error
        return then(*args, **kwargs)

    stand_in.calls = 0
    return stand_in


def after_writes(original, error: BaseException):
    """A stand-in for a function called late in a service: it runs the real one (so the
    service has written its rows), then raises `error`, as a connection lost mid-transaction."""

    def stand_in(*args, **kwargs):
        original(*args, **kwargs)
        raise error

    return stand_in


def messages(response) -> list[str]:
    return [error["message"] for error in response.json()["errors"]]


def assert_no_internals(response):
    text = response.content.decode()
    shown = [fragment for fragment in INTERNALS if fragment.lower() in text.lower()]
    assert shown == [], text


def assert_logged_in_full(fault_log, response, error: BaseException, text: str):
    """The app logged the fault once, under this request's id, with the error and its text."""
    records = fault_log()
    assert len(records) == 1, [record.getMessage() for record in records]
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[1] is error
    assert text in str(record.exc_info[1])
    assert response["X-Request-ID"] in record.getMessage()
    assert type(error).__name__ in record.getMessage()


def assert_keyed_call_kept_nothing(fault_log, response, *, status: int, message: str,
                                   before: dict, error: BaseException, text: str):
    """A call with an Idempotency-Key that met a fault on our side: the plain sentence and no
    internals, nothing kept (its key neither), and the fault logged in full."""
    assert response.status_code == status
    assert messages(response) == [message]
    assert_no_internals(response)
    assert not IdempotencyKey.objects.exists()
    assert api_state() == before
    assert_logged_in_full(fault_log, response, error, text)


def retry_refunds_once(client, token, invoice, reason):
    """The retry with the same key and body runs afresh and refunds the invoice, once."""
    response = refund(client, token, invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert response.status_code == 200
    assert response.json()["data"]["invoiceRefund"]["errors"] == []
    assert CreditNote.objects.count() == 1
    return response


# -- a mutation meets a fault ----------------------------------------------------------------------

def test_a_lost_connection_in_a_mutation_answers_503_with_the_plain_sentence(
        client, token, paid_invoice, reason, monkeypatch, fault_log):
    error = OperationalError(DRIVER_TEXT)
    stand_in = failing(error)
    monkeypatch.setattr("api.mutations.invoice_refund.credit_note_create", stand_in)
    before = api_state()

    response = refund(client, token, paid_invoice, reason)

    assert stand_in.calls == 1
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response["Content-Type"].startswith("application/json")
    assert messages(response) == [TEMPORARY_PROBLEM]
    assert response.json()["errors"][0]["path"] == ["invoiceRefund"]
    assert response.json()["data"] == {"invoiceRefund": None}
    assert_no_internals(response)
    assert api_state() == before
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)


def test_a_connection_lost_midway_through_a_refund_leaves_nothing_written(
        client, token, paid_invoice, reason, monkeypatch, fault_log):
    """The fault comes after the refund wrote its running totals (lines, payments, invoice) and
    took its credit note number: all of it is rolled back."""
    from refunds import services

    error = OperationalError(DRIVER_TEXT)
    monkeypatch.setattr(services, "number_take", after_writes(services.number_take, error))
    before = api_state()

    response = refund(client, token, paid_invoice, reason)

    assert response.status_code == 503
    assert messages(response) == [TEMPORARY_PROBLEM]
    assert_no_internals(response)
    assert api_state() == before
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)


def test_a_closed_connection_in_a_mutation_answers_503(client, token, paid_invoice, reason,
                                                       monkeypatch, fault_log):
    error = InterfaceError("connection already closed")
    monkeypatch.setattr("api.mutations.invoice_refund.credit_note_create", failing(error))

    response = refund(client, token, paid_invoice, reason)

    assert response.status_code == 503
    assert response["Retry-After"]
    assert messages(response) == [TEMPORARY_PROBLEM]
    assert "connection already closed" not in response.content.decode()
    assert_logged_in_full(fault_log, response, error, "connection already closed")


def test_a_bug_in_a_mutation_answers_500_without_its_text(client, token, paid_invoice, reason,
                                                          monkeypatch, fault_log):
    error = RuntimeError(SECRET)
    monkeypatch.setattr("api.mutations.invoice_refund.credit_note_create", failing(error))
    before = api_state()

    response = refund(client, token, paid_invoice, reason)

    assert response.status_code == 500
    assert "Retry-After" not in response  # retrying will not help
    assert messages(response) == [UNEXPECTED_PROBLEM]
    assert response.json()["data"] == {"invoiceRefund": None}
    assert_no_internals(response)
    assert api_state() == before
    assert_logged_in_full(fault_log, response, error, SECRET)


def test_a_database_error_that_is_not_a_lost_connection_answers_500(
        client, token, paid_invoice, reason, monkeypatch, fault_log):
    error = ProgrammingError('relation "refunds_creditnote" does not exist')
    monkeypatch.setattr("api.mutations.invoice_refund.credit_note_create", failing(error))

    response = refund(client, token, paid_invoice, reason)

    assert response.status_code == 500
    assert messages(response) == [UNEXPECTED_PROBLEM]
    assert "refunds_creditnote" not in response.content.decode()
    assert_logged_in_full(fault_log, response, error, "refunds_creditnote")


# -- ... with an Idempotency-Key -------------------------------------------------------------------

def test_a_keyed_refund_that_met_a_fault_is_carried_out_once_by_its_retry(
        client, token, paid_invoice, reason, monkeypatch, fault_log):
    from refunds import services

    error = OperationalError(DRIVER_TEXT)
    real_number_take = services.number_take
    monkeypatch.setattr(services, "number_take",
                        failing(error, times=1, then=real_number_take))
    before = api_state()

    # the first call meets a lost connection midway: nothing is kept, its key neither
    first = refund(client, token, paid_invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert_keyed_call_kept_nothing(fault_log, first, status=503, message=TEMPORARY_PROBLEM,
                                   before=before, error=error, text=DRIVER_TEXT)
    assert first["Retry-After"]
    assert "Idempotent-Replayed" not in first

    # the retry with the same key and body runs afresh and refunds the invoice
    second = retry_refunds_once(client, token, paid_invoice, reason)
    assert "Idempotent-Replayed" not in second
    payload = second.json()["data"]["invoiceRefund"]
    assert payload["creditNote"]["amount"] == "28.700"
    note = CreditNote.objects.get()
    assert payload["creditNote"]["id"] == str(note.pk)
    assert note.sequence == 1  # the faulted call's number was rolled back with it
    assert IdempotencyKey.objects.filter(key="refund-1", status_code=200).count() == 1
    after_retry = ledger_state()

    # a third call replays the retry's response and changes nothing
    third = refund(client, token, paid_invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert third.status_code == 200
    assert third["Idempotent-Replayed"] == "true"
    assert third.content == second.content
    assert ledger_state() == after_retry
    assert CreditNote.objects.count() == 1
    assert len(fault_log()) == 1


def test_a_keyed_request_that_met_a_bug_keeps_nothing_either(client, token, paid_invoice,
                                                             reason, monkeypatch, fault_log):
    from api.mutations import invoice_refund

    error = RuntimeError(SECRET)
    monkeypatch.setattr(invoice_refund, "credit_note_create",
                        failing(error, times=1, then=invoice_refund.credit_note_create))
    before = api_state()

    first = refund(client, token, paid_invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert_keyed_call_kept_nothing(fault_log, first, status=500, message=UNEXPECTED_PROBLEM,
                                   before=before, error=error, text=SECRET)

    retry_refunds_once(client, token, paid_invoice, reason)


def test_a_keyed_request_that_met_a_bug_has_no_retry_after_either(client, token, paid_invoice,
                                                                  reason, monkeypatch,
                                                                  fault_log):
    """With or without a key, a 500 does not invite the client to try again shortly."""
    monkeypatch.setattr("api.mutations.invoice_refund.credit_note_create",
                        failing(RuntimeError(SECRET)))

    unkeyed = refund(client, token, paid_invoice, reason)
    keyed = refund(client, token, paid_invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")

    assert unkeyed.status_code == keyed.status_code == 500
    assert messages(unkeyed) == messages(keyed) == [UNEXPECTED_PROBLEM]
    assert [SECRET in str(record.exc_info[1]) for record in fault_log()] == [True, True]
    assert "Retry-After" not in unkeyed
    assert "Retry-After" not in keyed


def test_a_keyed_request_is_rolled_back_whole_when_one_of_its_mutations_met_a_fault(
        client, token, paid_invoice, make_invoice, pay, reason, monkeypatch, fault_log):
    """The first refund of the request succeeded, the second met a lost connection: the first
    is not kept either, so the retry does both, once each."""
    from api.mutations import invoice_refund

    other = make_invoice()
    pay(other, "28.700")
    real_service = invoice_refund.credit_note_create
    error = OperationalError(DRIVER_TEXT)

    def second_fails_once(*, invoice, **kwargs):
        if invoice.pk == other.pk and not second_fails_once.failed:
            second_fails_once.failed = True
            raise error
        return real_service(invoice=invoice, **kwargs)

    second_fails_once.failed = False
    monkeypatch.setattr(invoice_refund, "credit_note_create", second_fails_once)
    variables = {"first": str(paid_invoice.pk), "second": str(other.pk), "reason": str(reason.pk)}
    before = api_state()

    first = gql_response(client, token, TWO_REFUNDS, variables, HTTP_IDEMPOTENCY_KEY="both")
    assert first.status_code == 503
    assert messages(first) == [TEMPORARY_PROBLEM]
    assert_no_internals(first)
    assert api_state() == before
    assert not IdempotencyKey.objects.exists()

    retry = gql_response(client, token, TWO_REFUNDS, variables, HTTP_IDEMPOTENCY_KEY="both")
    assert retry.status_code == 200
    data = retry.json()["data"]
    assert data["first"]["errors"] == [] and data["second"]["errors"] == []
    assert CreditNote.objects.filter(invoice=paid_invoice).count() == 1
    assert CreditNote.objects.filter(invoice=other).count() == 1
    assert sorted(CreditNote.objects.values_list("sequence", flat=True)) == [1, 2]

    replay = gql_response(client, token, TWO_REFUNDS, variables, HTTP_IDEMPOTENCY_KEY="both")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == retry.content
    assert CreditNote.objects.count() == 2


# -- a fault outside the operation -----------------------------------------------------------------

class _BrokenOAuthCore:
    def __init__(self, error):
        self.error = error

    def verify_request(self, request, scopes):
        raise self.error


def test_a_lost_connection_while_checking_the_token_answers_503(client, token, paid_invoice,
                                                                reason, monkeypatch, fault_log):
    error = OperationalError(DRIVER_TEXT)
    monkeypatch.setattr("api.views.get_oauthlib_core", lambda: _BrokenOAuthCore(error))
    before = api_state()

    response = refund(client, token, paid_invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")

    assert response.status_code == 503
    assert response["Retry-After"]
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"errors": [{"message": TEMPORARY_PROBLEM}]}
    assert_no_internals(response)
    assert api_state() == before
    assert not IdempotencyKey.objects.exists()
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)


def test_a_lost_connection_while_claiming_the_idempotency_key_answers_503(
        client, token, paid_invoice, reason, monkeypatch, fault_log):
    error = OperationalError(DRIVER_TEXT)
    stand_in = failing(error, times=1, then=IdempotencyKey.objects.bulk_create)
    monkeypatch.setattr(IdempotencyKey.objects, "bulk_create", stand_in)
    before = api_state()

    first = refund(client, token, paid_invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert_keyed_call_kept_nothing(fault_log, first, status=503, message=TEMPORARY_PROBLEM,
                                   before=before, error=error, text=DRIVER_TEXT)
    assert first["Retry-After"]
    assert first.json() == {"errors": [{"message": TEMPORARY_PROBLEM}]}

    retry_refunds_once(client, token, paid_invoice, reason)


def test_a_lost_connection_while_storing_the_response_keeps_nothing(
        client, token, paid_invoice, reason, monkeypatch, fault_log):
    """The refund ran, then saving its response under the key failed: the refund is rolled back
    with it, so the retry carries it out once."""
    error = OperationalError(DRIVER_TEXT)
    real_save = IdempotencyKey.save
    monkeypatch.setattr(IdempotencyKey, "save",
                        failing(error, times=1, then=real_save))
    before = api_state()

    first = refund(client, token, paid_invoice, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert_keyed_call_kept_nothing(fault_log, first, status=503, message=TEMPORARY_PROBLEM,
                                   before=before, error=error, text=DRIVER_TEXT)
    assert first.json() == {"errors": [{"message": TEMPORARY_PROBLEM}]}

    retry_refunds_once(client, token, paid_invoice, reason)


def test_another_database_error_outside_the_operation_answers_500(
        client, token, paid_invoice, reason, monkeypatch, fault_log):
    error = DatabaseError("could not open relation with OID 16384")
    monkeypatch.setattr("api.views.get_oauthlib_core", lambda: _BrokenOAuthCore(error))

    response = refund(client, token, paid_invoice, reason)

    assert response.status_code == 500
    assert response.json() == {"errors": [{"message": UNEXPECTED_PROBLEM}]}
    assert "OID" not in response.content.decode()
    assert_logged_in_full(fault_log, response, error, "OID 16384")


# -- a query meets a fault -------------------------------------------------------------------------

def test_a_query_field_that_met_a_lost_connection_answers_503_and_the_others_their_data(
        client, token, paid_invoice, clinic, monkeypatch, fault_log):
    error = OperationalError(DRIVER_TEXT)
    monkeypatch.setattr("api.queries.selected_fields", failing(error))

    response = gql_response(client, token, CLINICS_AND_INVOICE, {"id": str(paid_invoice.pk)})

    assert response.status_code == 503
    assert response["Retry-After"]
    body = response.json()
    assert [(e["message"], e["path"]) for e in body["errors"]] == [
        (TEMPORARY_PROBLEM, ["invoice"])]
    assert body["data"]["invoice"] is None
    assert body["data"]["clinics"] == [{"id": str(clinic.pk), "code": "MUSCAT"}]
    assert_no_internals(response)
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)


def test_a_query_field_that_met_a_bug_answers_500(client, token, paid_invoice, monkeypatch,
                                                  fault_log):
    error = RuntimeError(SECRET)
    monkeypatch.setattr("api.queries.selected_fields", failing(error))

    response = gql_response(client, token, CLINICS_AND_INVOICE, {"id": str(paid_invoice.pk)})

    assert response.status_code == 500
    assert messages(response) == [UNEXPECTED_PROBLEM]
    assert response.json()["data"]["clinics"] is not None
    assert_no_internals(response)
    assert_logged_in_full(fault_log, response, error, SECRET)


# -- refusals are not faults -----------------------------------------------------------------------

def test_a_business_refusal_keeps_its_message_and_http_200(client, token, make_invoice, reason,
                                                           fault_log):
    unpaid = make_invoice()
    before = api_state()

    response = refund(client, token, unpaid, reason)

    assert response.status_code == 200
    assert "Retry-After" not in response
    body = response.json()
    assert "errors" not in body
    assert body["data"]["invoiceRefund"] == {
        "creditNote": None, "errors": [NOTHING_PAID.format(invoice=unpaid)]}
    assert api_state() == before
    assert fault_log() == []


def test_a_keyed_business_refusal_is_kept_and_replayed(client, token, make_invoice, reason,
                                                       fault_log):
    unpaid = make_invoice()
    first = refund(client, token, unpaid, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    second = refund(client, token, unpaid, reason, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert IdempotencyKey.objects.count() == 1
    assert fault_log() == []


def test_a_missing_scope_keeps_its_message_and_http_200(clerk, client, paid_invoice, reason,
                                                        fault_log):
    read_only = api_token(clerk, "billing:read")
    before = api_state()

    response = refund(client, read_only, paid_invoice, reason)

    assert response.status_code == 200
    assert messages(response) == [scope_message("billing:write")]
    assert api_state() == before
    assert fault_log() == []


def test_a_malformed_id_is_not_a_fault(client, token, fault_log):
    response = gql_response(client, token, CLINICS_AND_INVOICE, {"id": "not-a-number"})
    assert response.status_code == 200
    assert response.json()["data"]["invoice"] is None
    assert "errors" not in response.json()
    assert fault_log() == []


# -- screens ---------------------------------------------------------------------------------------

@pytest.fixture
def as_clerk(client, clerk):
    client.force_login(clerk, backend="django.contrib.auth.backends.ModelBackend")
    return client


def assert_fault_page(response, *, status: int, message: str):
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert escape(message) in text
    assert response["X-Request-ID"] in text  # the reference staff can quote
    assert_no_internals(response)


def test_a_screen_that_met_a_lost_connection_shows_the_plain_page_with_503(
        as_clerk, paid_invoice, monkeypatch, fault_log):
    error = OperationalError(DRIVER_TEXT)
    monkeypatch.setattr("desk.views.invoice_search", failing(error))

    response = as_clerk.get(reverse("desk:invoice_list"))

    assert_fault_page(response, status=503, message=TEMPORARY_PROBLEM)
    assert response["Retry-After"]
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)


def test_a_screen_that_met_another_database_error_shows_the_plain_page_with_500(
        as_clerk, paid_invoice, monkeypatch, fault_log):
    error = ProgrammingError('column "secret_internals" does not exist')
    monkeypatch.setattr("desk.views.invoice_get_for_user", failing(error))

    response = as_clerk.get(reverse("desk:invoice_detail", args=[paid_invoice.pk]))

    assert_fault_page(response, status=500, message=UNEXPECTED_PROBLEM)
    assert "Retry-After" not in response
    assert_logged_in_full(fault_log, response, error, "secret_internals")


def test_a_payment_form_that_met_a_lost_connection_writes_nothing(
        as_clerk, make_invoice, cash, monkeypatch, fault_log):
    """The connection is lost after the payment row and the invoice's new balance were
    written: both are rolled back and staff see the plain page, not a success message."""
    from billing import services

    invoice = make_invoice()
    error = OperationalError(DRIVER_TEXT)
    monkeypatch.setattr(services, "audit_event_record",
                        after_writes(services.audit_event_record, error))
    before = ledger_state()

    response = as_clerk.post(
        reverse("billing:payment_create", args=[invoice.pk]),
        {"method": cash.pk, "amount": "10.000", "reference": "R-1",
         "received_at": "2030-01-02T09:30"})

    assert_fault_page(response, status=503, message=TEMPORARY_PROBLEM)
    assert response["Retry-After"]
    assert ledger_state() == before
    assert not Payment.objects.filter(invoice=invoice).exists()
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("0")
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)

    # the same form sent again, the connection back, records the payment once
    monkeypatch.undo()
    again = as_clerk.post(
        reverse("billing:payment_create", args=[invoice.pk]),
        {"method": cash.pk, "amount": "10.000", "reference": "R-1",
         "received_at": "2030-01-02T09:30"})
    assert again.status_code == 302
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_a_payment_form_whose_service_met_a_lost_connection_answers_503(
        as_clerk, make_invoice, cash, monkeypatch, fault_log):
    invoice = make_invoice()
    error = OperationalError(DRIVER_TEXT)
    monkeypatch.setattr("billing.views.payment_record", failing(error))
    before = ledger_state()

    response = as_clerk.post(
        reverse("billing:payment_create", args=[invoice.pk]),
        {"method": cash.pk, "amount": "10.000", "received_at": "2030-01-02T09:30"})

    assert_fault_page(response, status=503, message=TEMPORARY_PROBLEM)
    assert ledger_state() == before
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)


def test_a_session_request_to_the_api_gets_the_same_plain_sentence(
        as_clerk, paid_invoice, reason, monkeypatch, fault_log):
    """The API in a signed-in browser (GraphiQL): the same masking as with a token."""
    error = OperationalError(DRIVER_TEXT)
    monkeypatch.setattr("api.mutations.invoice_refund.credit_note_create", failing(error))

    response = as_clerk.post("/graphql/", data=json.dumps(
        {"query": REFUND, "variables": refund_vars(paid_invoice, reason)}),
        content_type="application/json")

    assert response.status_code == 503
    assert messages(response) == [TEMPORARY_PROBLEM]
    assert_no_internals(response)
    assert_logged_in_full(fault_log, response, error, DRIVER_TEXT)


def test_a_bug_on_a_screen_shows_the_plain_page(client, clerk, monkeypatch):
    # Any other exception of a view: Django's own 500 handler, with our page (no context
    # processors: they would query the database).
    import desk.views

    client.raise_request_exception = False
    client.force_login(clerk)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(desk.views, "invoice_search", broken)
    response = client.get(reverse("desk:invoice_list"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side and nothing was changed" in html
    assert "secret internals" not in html
