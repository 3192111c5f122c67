"""financialRequestWithdraw: the requester takes back a request still waiting for a decision
(billing:write)."""

import pytest

from approvals.models import RequestStatus
from approvals.rules import WITHDRAW_NOT_REQUESTER, WITHDRAW_NOT_WAITING
from approvals.services import refund_request_create, request_approve, request_reject
from audit.models import Action

from .api_helpers import (
    REQUEST_FIELDS,
    WRITE,
    api_client_of,
    api_token,
    audit_trail,
    mutate,
    mutate_refused,
    mutate_without_scope,
    request_of_other_clinic,
)

WITHDRAW_REQUEST = f"""
mutation ($requestId: ID!) {{
  financialRequestWithdraw(requestId: $requestId) {{
    financialRequest {{ {REQUEST_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def request_(approval_clinic, make_invoice, clerk):
    """An Invoice Refund Request by the clerk, waiting for a decision."""
    return refund_request_create(invoice=make_invoice(), remarks="Overcharged", actor=clerk)


def variables(request):
    return {"requestId": str(request.pk)}


def test_the_requester_withdraws_a_request_waiting_for_a_decision(client, token, request_):
    payload = mutate(client, token, WITHDRAW_REQUEST, variables(request_),
                     "financialRequestWithdraw")

    assert payload == {"errors": [], "financialRequest": {
        "id": str(request_.pk), "kind": "REFUND", "status": "WITHDRAWN",
        "invoiceId": str(request_.invoice_id), "remarks": "Overcharged", "requestedBy": "clerk",
        "decidedBy": None, "decisionRemarks": "", "creditNoteId": None}}
    request_.refresh_from_db()
    assert request_.status == RequestStatus.WITHDRAWN
    assert audit_trail(request_)[-1] == (
        Action.REQUEST_WITHDRAWN, "requested", "withdrawn", None, "clerk", api_client_of(token))


def test_someone_else_cannot_withdraw_the_request(client, clerk2, request_):
    mutate_refused(client, api_token(clerk2, WRITE), WITHDRAW_REQUEST, variables(request_),
                   "financialRequestWithdraw", WITHDRAW_NOT_REQUESTER.format(who="clerk"))


def test_an_approver_cannot_withdraw_the_request_either(client, approver, request_):
    mutate_refused(client, api_token(approver, "billing:write approvals:write"),
                   WITHDRAW_REQUEST, variables(request_), "financialRequestWithdraw",
                   WITHDRAW_NOT_REQUESTER.format(who="clerk"))


@pytest.mark.parametrize(("decide", "status"), [
    (lambda request, approver: request_approve(financial_request=request, actor=approver),
     "approved"),
    (lambda request, approver: request_reject(financial_request=request, actor=approver,
                                              remarks="Not justified"), "rejected"),
])
def test_a_decided_request_cannot_be_withdrawn(client, token, request_, approver, decide,
                                               status):
    decide(request_, approver)

    mutate_refused(client, token, WITHDRAW_REQUEST, variables(request_),
                   "financialRequestWithdraw", WITHDRAW_NOT_WAITING.format(status=status))


def test_it_needs_the_billing_write_scope(client, clerk, request_):
    mutate_without_scope(client, api_token(clerk, "billing:read approvals:write"),
                         WITHDRAW_REQUEST, variables(request_), "billing:write")


def test_a_request_of_another_clinic_is_not_found(client, token, other_invoice, outsider):
    other = request_of_other_clinic(other_invoice, outsider)

    mutate_refused(client, token, WITHDRAW_REQUEST, variables(other), "financialRequestWithdraw",
                   f"No financial request with id {other.pk} in your clinics.")
