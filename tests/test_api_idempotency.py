"""Idempotency-Key on POST /graphql/: a retry with the same key and the same body from the same
client gets the first response back and changes nothing; the same key with another body is
refused (422); another client's key of the same name is its own. Keys are kept at least 24
hours; purge_idempotency_keys forgets older ones."""

import datetime
import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from api.idempotency import KEY_REUSED, KEY_TOO_LONG
from api.models import IdempotencyKey
from audit.models import Action, AuditEvent
from refunds.models import CreditNote

from .api_helpers import GRAPHQL_URL, api_application, api_token, gql_response
from .concurrency import race
from .conftest import ledger_state, requires_postgres
from .factories import clerk_factory

REFUND = """
mutation invoiceRefund($invoiceId: ID!, $disputeReasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
    creditNote { id number amount currencyId creditedInvoiceId }
    errors
  }
}"""
THREADS = 8


@pytest.fixture
def paid_invoice(make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    return invoice


def refund_vars(invoice, reason):
    return {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)}


def post(client, token, key, variables, **extra):
    return gql_response(client, token, REFUND, variables, HTTP_IDEMPOTENCY_KEY=key, **extra)


def post_raw(client, token, key, raw_body: str):
    return client.post(GRAPHQL_URL, data=raw_body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY=key)


def credit_note_events():
    return AuditEvent.objects.filter(action=Action.CREDIT_NOTE_ISSUED).count()


# -- replay ----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_retry_gets_the_first_response_and_changes_nothing(client, token, paid_invoice,
                                                             reason):
    first = post(client, token, "refund-1", refund_vars(paid_invoice, reason))
    assert first.status_code == 200
    payload = first.json()["data"]["invoiceRefund"]
    assert payload["errors"] == []
    assert payload["creditNote"]["amount"] == "28.700"
    assert "Idempotent-Replayed" not in first
    after_first = ledger_state()
    assert CreditNote.objects.count() == 1
    assert credit_note_events() == 1

    second = post(client, token, "refund-1", refund_vars(paid_invoice, reason))
    assert second.status_code == 200
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert second["Content-Type"] == "application/json"
    assert ledger_state() == after_first  # nothing written twice, no audit event either
    assert CreditNote.objects.count() == 1
    assert credit_note_events() == 1
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.django_db
def test_without_a_key_a_retry_runs_again(client, token, paid_invoice, reason):
    """The contrast: without a key the second refund is refused by the business rules."""
    first = gql_response(client, token, REFUND, refund_vars(paid_invoice, reason))
    second = gql_response(client, token, REFUND, refund_vars(paid_invoice, reason))
    assert first.json()["data"]["invoiceRefund"]["errors"] == []
    assert second.json()["data"]["invoiceRefund"]["creditNote"] is None
    assert second.json()["data"]["invoiceRefund"]["errors"] != []
    assert CreditNote.objects.count() == 1
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_the_same_body_spaced_and_ordered_differently_is_a_replay(client, token, paid_invoice,
                                                                  reason):
    variables = refund_vars(paid_invoice, reason)
    compact = json.dumps({"query": REFUND, "variables": variables}, separators=(",", ":"))
    reordered = json.dumps({"variables": dict(reversed(list(variables.items()))),
                            "query": REFUND}, indent=4)
    assert compact != reordered
    first = post_raw(client, token, "refund-1", compact)
    second = post_raw(client, token, "refund-1", reordered)
    assert second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert CreditNote.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_first_request_is_replayed_as_refused(client, token, make_invoice, reason):
    """A business refusal is a response like any other: the retry gets it back."""
    unpaid = make_invoice()
    first = post(client, token, "refund-1", refund_vars(unpaid, reason))
    assert first.json()["data"]["invoiceRefund"]["errors"] != []
    second = post(client, token, "refund-1", refund_vars(unpaid, reason))
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"


# -- the same key with another body ----------------------------------------------------------------

@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422(client, token, paid_invoice, make_invoice, pay,
                                               reason):
    other = make_invoice()
    pay(other, "28.700")
    first = post(client, token, "refund-1", refund_vars(paid_invoice, reason))
    assert first.json()["data"]["invoiceRefund"]["errors"] == []
    before = ledger_state()

    response = post(client, token, "refund-1", refund_vars(other, reason))
    assert response.status_code == 422
    assert response.json() == {"errors": [{"message": KEY_REUSED}]}
    assert "Idempotent-Replayed" not in response
    assert ledger_state() == before
    assert not CreditNote.objects.filter(invoice=other).exists()

    # the first request can still be retried
    again = post(client, token, "refund-1", refund_vars(paid_invoice, reason))
    assert again.content == first.content


@pytest.mark.django_db
def test_a_different_query_text_is_another_body(client, token, paid_invoice, reason):
    post(client, token, "refund-1", refund_vars(paid_invoice, reason))
    response = gql_response(client, token, REFUND.replace("number ", ""),
                            refund_vars(paid_invoice, reason), HTTP_IDEMPOTENCY_KEY="refund-1")
    assert response.status_code == 422
    assert response.json() == {"errors": [{"message": KEY_REUSED}]}


# -- keys belong to their client -------------------------------------------------------------------

@pytest.mark.django_db
def test_a_retry_with_a_new_token_of_the_same_client_is_a_replay(client, clerk, paid_invoice,
                                                                 reason):
    """A token expired between the call and its retry: the client's next token replays."""
    application = api_application(clerk, "billing:read billing:write")
    first_token = api_token(clerk, "billing:read billing:write", application=application)
    first = post(client, first_token, "refund-1", refund_vars(paid_invoice, reason))
    next_token = api_token(clerk, "billing:read billing:write", application=application)
    second = post(client, next_token, "refund-1", refund_vars(paid_invoice, reason))
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert CreditNote.objects.count() == 1


@pytest.mark.django_db
def test_another_application_of_the_same_user_has_its_own_keys(client, clerk, token,
                                                               paid_invoice, make_invoice, pay,
                                                               reason):
    other_app = api_application(clerk, "billing:read billing:write")
    other_token = api_token(clerk, "billing:read billing:write", application=other_app)
    other = make_invoice()
    pay(other, "28.700")

    first = post(client, token, "shared-key", refund_vars(paid_invoice, reason))
    assert first.json()["data"]["invoiceRefund"]["errors"] == []
    # another body under the same key: not 422, it is the other client's own request
    second = post(client, other_token, "shared-key", refund_vars(other, reason))
    assert second.status_code == 200
    assert "Idempotent-Replayed" not in second
    assert second.json()["data"]["invoiceRefund"]["errors"] == []
    assert CreditNote.objects.count() == 2
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 2


@pytest.mark.django_db
def test_another_client_with_the_same_key_and_body_gets_its_own_result(client, clerk, token,
                                                                       paid_invoice, reason):
    other_token = api_token(clerk, "billing:read billing:write")  # a second application
    first = post(client, token, "shared-key", refund_vars(paid_invoice, reason))
    second = post(client, other_token, "shared-key", refund_vars(paid_invoice, reason))
    assert "Idempotent-Replayed" not in second
    assert second.content != first.content
    assert second.json()["data"]["invoiceRefund"]["creditNote"] is None
    assert second.json()["data"]["invoiceRefund"]["errors"] != []  # nothing left to refund
    assert CreditNote.objects.count() == 1


@pytest.mark.django_db
def test_another_users_client_with_the_same_key_is_independent(client, clinic, token,
                                                               paid_invoice, make_invoice, pay,
                                                               reason):
    colleague = clerk_factory(username="colleague", clinics=[clinic])
    colleague_token = api_token(colleague, "billing:read billing:write")
    other = make_invoice()
    pay(other, "28.700")
    post(client, token, "shared-key", refund_vars(paid_invoice, reason))
    response = post(client, colleague_token, "shared-key", refund_vars(other, reason))
    assert response.status_code == 200
    assert response.json()["data"]["invoiceRefund"]["errors"] == []
    assert CreditNote.objects.filter(invoice=other).count() == 1


@pytest.mark.django_db
def test_a_browser_session_and_a_token_of_one_user_have_separate_keys(client, clerk, token,
                                                                      paid_invoice,
                                                                      make_invoice, pay,
                                                                      reason):
    other = make_invoice()
    pay(other, "28.700")
    post(client, token, "shared-key", refund_vars(paid_invoice, reason))
    browser = Client()
    browser.force_login(clerk)
    response = post(browser, None, "shared-key", refund_vars(other, reason))
    assert response.status_code == 200
    assert response.json()["data"]["invoiceRefund"]["errors"] == []


# -- the key itself --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_key_longer_than_255_characters_is_400(client, token, paid_invoice, reason):
    before = ledger_state()
    response = post(client, token, "k" * 256, refund_vars(paid_invoice, reason))
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": KEY_TOO_LONG}]}
    assert ledger_state() == before
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_a_key_of_255_characters_is_accepted(client, token, paid_invoice, reason):
    first = post(client, token, "k" * 255, refund_vars(paid_invoice, reason))
    assert first.json()["data"]["invoiceRefund"]["errors"] == []
    second = post(client, token, "k" * 255, refund_vars(paid_invoice, reason))
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_request_refused_with_401_stores_no_key(client, paid_invoice, reason):
    response = post(client, "garbage", "refund-1", refund_vars(paid_invoice, reason))
    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()


# -- retention -------------------------------------------------------------------------------------

def test_keys_are_kept_at_least_24_hours():
    assert settings.IDEMPOTENCY_KEY_TTL_HOURS >= 24


def test_a_shorter_ttl_from_the_environment_is_raised_to_24_hours():
    env = {**os.environ, "IDEMPOTENCY_KEY_TTL_HOURS": "1",
           "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c",
         "from django.conf import settings; print(settings.IDEMPOTENCY_KEY_TTL_HOURS)"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
        cwd=settings.BASE_DIR)
    assert result.stdout.strip() == "24"


def _key(name, age_hours):
    key = IdempotencyKey.objects.create(client="app:1", key=name, request_hash="0" * 64,
                                        status_code=200, response_body="{}")
    IdempotencyKey.objects.filter(pk=key.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=age_hours))
    return key


@pytest.mark.django_db
def test_purge_forgets_keys_older_than_the_ttl_and_keeps_newer_ones():
    ttl = settings.IDEMPOTENCY_KEY_TTL_HOURS
    _key("ancient", ttl * 10)
    _key("just-expired", ttl + 0.1)
    _key("almost-expired", ttl - 0.1)
    _key("a-day-old", 23.9)
    _key("fresh", 0)
    out = StringIO()
    call_command("purge_idempotency_keys", stdout=out)
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == [
        "a-day-old", "almost-expired", "fresh"]
    assert "2" in out.getvalue()


@pytest.mark.django_db
def test_a_purged_key_may_be_used_again(client, token, paid_invoice, make_invoice, pay, reason):
    other = make_invoice()
    pay(other, "28.700")
    post(client, token, "refund-1", refund_vars(paid_invoice, reason))
    IdempotencyKey.objects.update(created_at=timezone.now() - datetime.timedelta(
        hours=settings.IDEMPOTENCY_KEY_TTL_HOURS + 1))
    call_command("purge_idempotency_keys", stdout=StringIO())
    response = post(client, token, "refund-1", refund_vars(other, reason))
    assert response.status_code == 200
    assert response.json()["data"]["invoiceRefund"]["errors"] == []


# -- concurrent retries (PostgreSQL) ---------------------------------------------------------------

@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_key_make_one_credit_note(token, paid_invoice, reason):
    variables = refund_vars(paid_invoice, reason)

    def retry(client):
        def call():
            response = post(client, token, "refund-concurrent", variables)
            return (response.status_code, response.content,
                    response.get("Idempotent-Replayed"))
        return call

    outcomes = race(*[retry(Client()) for _ in range(THREADS)])

    failures = [value for ok, value in outcomes if not ok]
    assert failures == []
    responses = [value for _, value in outcomes]
    assert CreditNote.objects.filter(invoice=paid_invoice).count() == 1
    assert credit_note_events() == 1
    assert {status for status, _, _ in responses} == {200}
    bodies = {body for _, body, _ in responses}
    assert len(bodies) == 1
    payload = json.loads(bodies.pop())["data"]["invoiceRefund"]
    assert payload["errors"] == []
    assert payload["creditNote"]["amount"] == "28.700"
    assert sorted(replayed or "" for _, _, replayed in responses) == [""] + ["true"] * (THREADS - 1)
