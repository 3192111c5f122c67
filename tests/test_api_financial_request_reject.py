"""financialRequestReject: a financial approver of the request's clinic, never its requester,
rejects it with remarks; the invoice is left as it was (approvals:write)."""

import pytest
from django.core import mail

from approvals.models import RequestStatus
from approvals.rules import ALREADY_DECIDED, NOT_OPEN, OWN_REQUEST
from approvals.services import (
    REJECT_REMARKS,
    cancellation_request_create,
    request_approve,
    request_withdraw,
)
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.models import InvoiceStatus
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

REJECT_REQUEST = f"""
mutation ($requestId: ID!, $remarks: String!) {{
  financialRequestReject(requestId: $requestId, remarks: $remarks) {{
    financialRequest {{ {REQUEST_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def request_(approval_clinic, make_invoice, clerk):
    """An Invoice Cancellation Request by the clerk, waiting for a decision."""
    return cancellation_request_create(invoice=make_invoice(), remarks="Entered twice",
                                       actor=clerk)


def variables(request, remarks="The patient attended"):
    return {"requestId": str(request.pk), "remarks": remarks}


def test_an_approver_rejects_the_request_and_the_invoice_stays_as_it_was(
        client, approver_token, request_, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payload = mutate(client, approver_token, REJECT_REQUEST, variables(request_),
                         "financialRequestReject")

    assert payload == {"errors": [], "financialRequest": {
        "id": str(request_.pk), "kind": "CANCELLATION", "status": "REJECTED",
        "invoiceId": str(request_.invoice_id), "remarks": "Entered twice",
        "requestedBy": "clerk", "decidedBy": "approver",
        "decisionRemarks": "The patient attended", "creditNoteId": None}}
    request_.refresh_from_db()
    assert (request_.status, request_.decided_by.username, request_.decision_remarks) == (
        RequestStatus.REJECTED, "approver", "The patient attended")
    assert request_.invoice.status == InvoiceStatus.ISSUED
    assert audit_trail(request_)[-1] == (
        Action.REQUEST_REJECTED, "requested", "rejected", None, "approver",
        api_client_of(approver_token))
    assert [message.to for message in mail.outbox] == [["clerk@clinic.test"]]


def test_it_refuses_a_rejection_without_remarks(client, approver_token, request_):
    mutate_refused(client, approver_token, REJECT_REQUEST, variables(request_, "  "),
                   "financialRequestReject", REJECT_REMARKS)


def test_it_refuses_overlong_remarks(client, approver_token, request_):
    mutate_refused(client, approver_token, REJECT_REQUEST, variables(request_, "x" * 1001),
                   "financialRequestReject", REMARKS_TOO_LONG.format(limit=1000))


def test_a_token_of_a_user_without_the_approval_permission_cannot_reject(client, clerk2,
                                                                         request_):
    mutate_refused(client, api_token(clerk2, "billing:write approvals:write"), REJECT_REQUEST,
                   variables(request_), "financialRequestReject",
                   NO_PERMISSION.format(action="approve or reject financial requests"))


def test_the_requester_cannot_reject_their_own_request(client, approval_clinic, make_invoice,
                                                       roles):
    head = UserFactory(username="head", clinics=[approval_clinic],
                       groups=[BILLING_STAFF, FINANCIAL_APPROVERS])
    own = cancellation_request_create(invoice=make_invoice(actor=head), remarks="Duplicate",
                                      actor=head)

    mutate_refused(client, api_token(head, "billing:write approvals:write"), REJECT_REQUEST,
                   variables(own), "financialRequestReject", OWN_REQUEST)


def test_a_request_already_approved_cannot_be_rejected(client, request_, clinic):
    first = approver_factory(username="approver2", clinics=[clinic])
    request_approve(financial_request=request_, actor=first)

    mutate_refused(client, api_token(first, APPROVE), REJECT_REQUEST, variables(request_),
                   "financialRequestReject",
                   ALREADY_DECIDED.format(who="approver2", status="approved"))


def test_a_withdrawn_request_cannot_be_rejected(client, approver_token, request_, clerk):
    request_withdraw(financial_request=request_, actor=clerk)

    mutate_refused(client, approver_token, REJECT_REQUEST, variables(request_),
                   "financialRequestReject", NOT_OPEN.format(status="withdrawn"))


def test_it_needs_the_approvals_write_scope(client, approver, request_):
    mutate_without_scope(client, api_token(approver, "billing:read billing:write"),
                         REJECT_REQUEST, variables(request_), "approvals:write")


def test_a_request_of_another_clinic_is_not_found(client, approver_token, other_invoice,
                                                  outsider):
    other = request_of_other_clinic(other_invoice, outsider)

    mutate_refused(client, approver_token, REJECT_REQUEST, variables(other),
                   "financialRequestReject",
                   f"No financial request with id {other.pk} in your clinics.")
