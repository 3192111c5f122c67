"""Helpers for the GraphQL API tests: a real OAuth2 access token without the HTTP token
dance, and a client call to POST /graphql/ that returns the decoded JSON."""

import json
import secrets
from datetime import timedelta

from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from api.models import ApiClient

from .factories import set_policy

GRAPHQL_URL = "/graphql/"


def api_application(user, scopes: str):
    """A confidential client-credentials application acting as `user`, allowed `scopes`
    (as create_api_client makes one)."""
    application_model = get_application_model()
    application = application_model.objects.create(
        name=f"{user.username} test integration",
        user=user,
        client_type=application_model.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
    )
    ApiClient.objects.create(application=application, scopes=scopes)
    return application


def api_token(user, scopes: str, *, application=None, expires_in: int = 3600) -> str:
    """The raw string of a valid access token for `user` with exactly `scopes`
    (space-separated, e.g. "billing:read billing:write")."""
    application = application or api_application(user, scopes)
    raw = secrets.token_urlsafe(30)
    get_access_token_model().objects.create(
        user=user,
        application=application,
        token=raw,
        scope=scopes,
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    return raw


def gql_response(client, token, query, variables=None, **extra):
    """POST the query to /graphql/ with the bearer token; the Django test response.
    `extra` goes to client.post (e.g. HTTP_IDEMPOTENCY_KEY="k1")."""
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if token is not None:
        extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    return client.post(GRAPHQL_URL, data=json.dumps(body), content_type="application/json",
                       **extra)


def gql(client, token, query, variables=None, **extra) -> dict:
    """POST the query to /graphql/ with the bearer token; the decoded JSON body."""
    return gql_response(client, token, query, variables, **extra).json()


# -- mutations: payloads, refusals and "nothing changed" ---------------------------------------

WRITE = "billing:read billing:write"
APPROVE = "billing:read approvals:write"


def scope_message(scope: str) -> str:
    return f"This operation needs the {scope} scope; ask for a token that has it."


def api_state() -> dict:
    """ledger_state() plus what the API can also change: accounts, financial requests and their
    lines, and every field of the refunds a mutation may move."""
    from approvals.models import FinancialRequest, FinancialRequestLine
    from billing.models import Account
    from refunds.models import Refund

    from .conftest import ledger_state

    return {
        "ledger": ledger_state(),
        "accounts": list(Account.objects.order_by("pk").values_list(
            "pk", "clinic_id", "name", "number", "is_active")),
        "requests": list(FinancialRequest.objects.order_by("pk").values_list(
            "pk", "status", "decided_by", "decided_at", "decision_remarks", "completed_by")),
        "request_lines": list(FinancialRequestLine.objects.order_by("pk").values_list(
            "pk", "request_id", "invoice_line_id", "amount")),
        "refunds": list(Refund.objects.order_by("pk").values_list(
            "pk", "status", "attempts", "gateway_reference", "paid_out_by", "completed_at")),
    }


def mutate(client, token, query, variables, name: str) -> dict:
    """Run a mutation that must reach its resolver; its payload (objects and `errors`)."""
    result = gql(client, token, query, variables)
    assert "errors" not in result, result
    return result["data"][name]


def mutate_refused(client, token, query, variables, name: str, message: str) -> dict:
    """The mutation answers errors == [message], returns no object and changes nothing."""
    before = api_state()
    payload = mutate(client, token, query, variables, name)
    assert payload["errors"] == [message]
    objects = {key: value for key, value in payload.items() if key != "errors"}
    assert objects and all(value is None for value in objects.values()), payload
    assert api_state() == before
    return payload


def mutate_without_scope(client, token, query, variables, scope: str) -> dict:
    """The mutation is refused as a GraphQL error naming the missing scope; nothing changes."""
    before = api_state()
    result = gql(client, token, query, variables)
    # the mutation's field is null (mutation fields are nullable, so others in the same request
    # still report their own results)
    assert result["data"] is not None
    assert all(value is None for value in result["data"].values())
    assert [error["message"] for error in result["errors"]] == [scope_message(scope)]
    assert api_state() == before
    return result


def audit_trail(obj) -> list[tuple]:
    """(action, from_state, to_state, amount, actor_username, client) of every audit event about
    `obj`, oldest first."""
    from django.contrib.contenttypes.models import ContentType

    from audit.models import AuditEvent

    return list(AuditEvent.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk),
    ).order_by("pk").values_list("action", "from_state", "to_state", "amount", "actor_username",
                                 "client"))


def api_client_of(token: str) -> str:
    """The audit `client` of requests made with this token: api:<client_id>."""
    access = get_access_token_model().objects.select_related("application").get(token=token)
    return f"api:{access.application.client_id}"


# Selections the mutation tests share.
INVOICE_FIELDS = """
  id number status currencyId entityId accountId subtotal taxAmount total amountPaid
  amountRefunded amountCredited balanceDue
  lines { id description quantity unitPrice taxRate net tax total creditedNet creditedTax }
"""
CREDIT_NOTE_FIELDS = """
  id number kind amount subtotal taxAmount amountApplied amountUnapplied currencyId
  creditedInvoiceId entityId accountId disputeReasonId disputeId isCredit isLegacy description
  lines { invoiceLineId net tax total }
"""
REQUEST_FIELDS = """
  id kind status invoiceId remarks requestedBy decidedBy decisionRemarks creditNoteId
"""
REFUND_FIELDS = """
  id status amount currencyId paymentId invoiceId creditNoteId gatewayReference failureReason
"""


def request_of_other_clinic(other_invoice, outsider):
    """An Invoice Refund Request waiting for a decision at another clinic."""
    from approvals.services import refund_request_create
    from billing.models import Policy

    clinic = other_invoice.clinic
    set_policy(clinic, refund=Policy.APPROVAL)
    return refund_request_create(invoice=other_invoice, remarks="Overcharged", actor=outsider)


def mutate_refused_in_a_sentence(client, token, query, variables, name: str) -> str:
    """For refusals that have no message constant yet: the mutation answers with one plain
    sentence in `errors` (not a GraphQL error), returns no object and changes nothing."""
    before = api_state()
    payload = mutate(client, token, query, variables, name)
    assert len(payload["errors"]) == 1 and payload["errors"][0].endswith("."), payload
    objects = {key: value for key, value in payload.items() if key != "errors"}
    assert objects and all(value is None for value in objects.values()), payload
    assert api_state() == before
    return payload["errors"][0]
