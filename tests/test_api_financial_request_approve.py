"""financialRequestApprove: a financial approver of the request's clinic, never its requester,
approves it (approvals:write)."""

import pytest
from django.core import mail

from approvals.models import RequestStatus
from approvals.rules import ALREADY_DECIDED, NOT_OPEN, OWN_REQUEST
from approvals.services import (
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
)
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.roles import BILLING_STAFF, FINANCIAL_APPROVERS
from billing.text import REMARKS_TOO_LONG

from .api_helpers import (
    APPROVE,
    REQUEST_FIELDS,
    api_client_of,
    api_token,
    audit_trail,
    mutate,
    mutate_refused,
    mutate_without_scope,
    request_of_other_clinic,
)
from .factories import UserFactory, approver_factory

APPROVE_REQUEST = f"""
mutation ($requestId: ID!, $remarks: String) {{
  financialRequestApprove(requestId: $requestId, remarks: $remarks) {{
    financialRequest {{ {REQUEST_FIELDS} }}
    errors
  }}
}}
"""
CANNOT_DECIDE = NO_PERMISSION.format(action="approve or reject financial requests")


@pytest.fixture
def request_(approval_clinic, make_invoice, clerk):
    """An Invoice Refund Request by the clerk, waiting for a decision."""
    return refund_request_create(invoice=make_invoice(), remarks="Overcharged", actor=clerk)


def variables(request, remarks="Checked with the doctor"):
    return {"requestId": str(request.pk), "remarks": remarks}


def test_an_approver_approves_the_request_and_the_requester_is_told(
        client, approver_token, request_, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payload = mutate(client, approver_token, APPROVE_REQUEST, variables(request_, " Checked "),
                         "financialRequestApprove")

    assert payload == {"errors": [], "financialRequest": {
        "id": str(request_.pk), "kind": "REFUND", "status": "APPROVED",
        "invoiceId": str(request_.invoice_id), "remarks": "Overcharged", "requestedBy": "clerk",
        "decidedBy": "approver", "decisionRemarks": "Checked", "creditNoteId": None}}
    request_.refresh_from_db()
    assert (request_.status, request_.decided_by.username, request_.decision_remarks) == (
        RequestStatus.APPROVED, "approver", "Checked")
    assert request_.decided_at is not None
    assert audit_trail(request_)[-1] == (
        Action.REQUEST_APPROVED, "requested", "approved", None, "approver",
        api_client_of(approver_token))
    assert [message.to for message in mail.outbox] == [["clerk@clinic.test"]]


def test_approvals_write_alone_is_enough_to_approve(client, approver, request_):
    payload = mutate(client, api_token(approver, "approvals:write"), APPROVE_REQUEST,
                     variables(request_), "financialRequestApprove")

    assert payload["financialRequest"]["status"] == "APPROVED"


def test_a_token_of_a_user_without_the_approval_permission_cannot_approve(client, clerk2,
                                                                          request_):
    token = api_token(clerk2, "billing:read billing:write approvals:write")

    mutate_refused(client, token, APPROVE_REQUEST, variables(request_),
                   "financialRequestApprove", CANNOT_DECIDE)


def test_the_requester_cannot_approve_their_own_request_even_as_an_approver(
        client, approval_clinic, make_invoice, roles, request_):
    head = UserFactory(username="head", clinics=[approval_clinic],
                       groups=[BILLING_STAFF, FINANCIAL_APPROVERS])
    own = refund_request_create(invoice=make_invoice(actor=head), remarks="Overcharged",
                                actor=head)
    token = api_token(head, "billing:read billing:write approvals:write")

    mutate_refused(client, token, APPROVE_REQUEST, variables(own), "financialRequestApprove",
                   OWN_REQUEST)
    # the same token decides someone else's request
    payload = mutate(client, token, APPROVE_REQUEST, variables(request_),
                     "financialRequestApprove")
    assert payload["financialRequest"]["decidedBy"] == "head"


def test_a_request_already_approved_cannot_be_approved_again(client, request_, approver,
                                                             clinic):
    request_approve(financial_request=request_, actor=approver)
    second = approver_factory(username="approver2", clinics=[clinic])

    mutate_refused(client, api_token(second, APPROVE), APPROVE_REQUEST, variables(request_),
                   "financialRequestApprove",
                   ALREADY_DECIDED.format(who="approver", status="approved"))


def test_a_rejected_request_cannot_be_approved(client, approver_token, request_, clinic):
    second = approver_factory(username="approver2", clinics=[clinic])
    request_reject(financial_request=request_, actor=second, remarks="Not justified")

    mutate_refused(client, approver_token, APPROVE_REQUEST, variables(request_),
                   "financialRequestApprove",
                   ALREADY_DECIDED.format(who="approver2", status="rejected"))


def test_a_withdrawn_request_cannot_be_approved(client, approver_token, request_, clerk):
    request_withdraw(financial_request=request_, actor=clerk)

    mutate_refused(client, approver_token, APPROVE_REQUEST, variables(request_),
                   "financialRequestApprove", NOT_OPEN.format(status="withdrawn"))


def test_it_refuses_overlong_remarks(client, approver_token, request_):
    mutate_refused(client, approver_token, APPROVE_REQUEST, variables(request_, "x" * 1001),
                   "financialRequestApprove", REMARKS_TOO_LONG.format(limit=1000))


def test_an_approver_of_another_clinic_does_not_find_the_request(client, other_approver,
                                                                 request_):
    mutate_refused(client, api_token(other_approver, APPROVE), APPROVE_REQUEST,
                   variables(request_), "financialRequestApprove",
                   f"No financial request with id {request_.pk} in your clinics.")


def test_it_needs_the_approvals_write_scope(client, approver, request_):
    mutate_without_scope(client, api_token(approver, "billing:read billing:write"),
                         APPROVE_REQUEST, variables(request_), "approvals:write")


def test_a_request_of_another_clinic_is_not_found(client, approver_token, other_invoice,
                                                  outsider):
    other = request_of_other_clinic(other_invoice, outsider)

    mutate_refused(client, approver_token, APPROVE_REQUEST, variables(other),
                   "financialRequestApprove",
                   f"No financial request with id {other.pk} in your clinics.")
