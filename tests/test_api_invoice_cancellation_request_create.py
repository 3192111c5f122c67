"""invoiceCancellationRequestCreate: ask a financial approver to cancel an issued invoice
(clinics whose cancellations need approval)."""

import pytest
from django.core import mail

from approvals.models import FinancialRequest, RequestKind, RequestStatus
from approvals.rules import ALREADY_OPEN, DIRECT_POLICY
from approvals.services import REMARKS_REQUIRED, cancellation_request_create
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.breakdown import CreditLineInput
from billing.models import Policy
from billing.rules import CANCEL_ALREADY, CANCEL_DRAFT, CANCEL_NOTHING_LEFT, CANCEL_PAID
from billing.text import REMARKS_TOO_LONG
from refunds.services import credit_note_create, invoice_cancel

from .api_helpers import (
    REQUEST_FIELDS,
    WRITE,
    api_client_of,
    api_token,
    audit_trail,
    mutate,
    mutate_refused,
    mutate_without_scope,
)
from .factories import set_policy

INVOICE = "Invoice INV-MUSCAT-000001"

CANCELLATION_REQUEST_CREATE = f"""
mutation ($invoiceId: ID!, $remarks: String!) {{
  invoiceCancellationRequestCreate(invoiceId: $invoiceId, remarks: $remarks) {{
    financialRequest {{ {REQUEST_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def invoice(approval_clinic, make_invoice):
    return make_invoice()


def variables(invoice, remarks="Entered twice"):
    return {"invoiceId": str(invoice.pk), "remarks": remarks}


def require_cancellation_approval(clinic):
    set_policy(clinic, cancellation=Policy.APPROVAL)


def test_it_submits_the_request_and_notifies_the_approvers(
        client, token, invoice, approver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payload = mutate(client, token, CANCELLATION_REQUEST_CREATE, variables(invoice),
                         "invoiceCancellationRequestCreate")

    request = FinancialRequest.objects.get()
    assert payload == {"errors": [], "financialRequest": {
        "id": str(request.pk), "kind": "CANCELLATION", "status": "REQUESTED",
        "invoiceId": str(invoice.pk), "remarks": "Entered twice", "requestedBy": "clerk",
        "decidedBy": None, "decisionRemarks": "", "creditNoteId": None}}
    assert (request.kind, request.status) == (RequestKind.CANCELLATION, RequestStatus.REQUESTED)
    assert audit_trail(request) == [
        (Action.REQUEST_SUBMITTED, "", "requested", None, "clerk", api_client_of(token))]
    assert [message.to for message in mail.outbox] == [["approver@clinic.test"]]
    invoice.refresh_from_db()
    assert invoice.status == "issued"


@pytest.mark.parametrize(("remarks", "message"), [
    ("", REMARKS_REQUIRED),
    ("x" * 1001, REMARKS_TOO_LONG.format(limit=1000)),
])
def test_it_refuses_missing_or_overlong_remarks(client, token, invoice, remarks, message):
    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE, variables(invoice, remarks),
                   "invoiceCancellationRequestCreate", message)


def test_it_refuses_where_the_clinic_cancels_directly(client, token, make_invoice):
    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE, variables(make_invoice()),
                   "invoiceCancellationRequestCreate",
                   DIRECT_POLICY.format(clinic="Muscat Clinic", what="cancels invoices"))


def test_it_refuses_a_second_open_request(client, token, invoice, clerk2):
    first = cancellation_request_create(invoice=invoice, remarks="Duplicate", actor=clerk2)

    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE, variables(invoice),
                   "invoiceCancellationRequestCreate", ALREADY_OPEN.format(
                       invoice=INVOICE, kind="Invoice Cancellation Request", pk=first.pk,
                       status="requested", requester="clerk2"))


def test_it_refuses_while_money_paid_is_not_refunded(client, token, invoice, pay):
    pay(invoice, "10.000")

    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE, variables(invoice),
                   "invoiceCancellationRequestCreate",
                   CANCEL_PAID.format(amount="10.000 OMR", invoice=INVOICE))


def test_it_refuses_a_draft(client, token, approval_clinic, make_invoice):
    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE,
                   variables(make_invoice(issue=False)), "invoiceCancellationRequestCreate",
                   CANCEL_DRAFT)


def test_it_refuses_a_cancelled_invoice(client, token, clinic, make_invoice, clerk):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Entered twice", actor=clerk)
    require_cancellation_approval(clinic)

    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE, variables(invoice),
                   "invoiceCancellationRequestCreate",
                   CANCEL_ALREADY.format(invoice=INVOICE))


def test_it_refuses_a_fully_credited_invoice(client, token, clinic, make_invoice, reason,
                                             clerk):
    invoice = make_invoice()
    credit_note_create(invoice=invoice,
                       lines=[CreditLineInput(line) for line in invoice.lines.all()],
                       dispute_reason=reason, actor=clerk)
    require_cancellation_approval(clinic)

    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE, variables(invoice),
                   "invoiceCancellationRequestCreate",
                   CANCEL_NOTHING_LEFT.format(invoice=INVOICE))


def test_a_member_without_the_permission_cannot_submit_requests(client, approver, invoice):
    mutate_refused(client, api_token(approver, WRITE), CANCELLATION_REQUEST_CREATE,
                   variables(invoice), "invoiceCancellationRequestCreate",
                   NO_PERMISSION.format(action="submit requests"))


def test_it_needs_the_billing_write_scope(client, clerk, invoice):
    mutate_without_scope(client, api_token(clerk, "billing:read"), CANCELLATION_REQUEST_CREATE,
                         variables(invoice), "billing:write")


def test_an_invoice_of_another_clinic_is_not_found(client, token, other_invoice):
    mutate_refused(client, token, CANCELLATION_REQUEST_CREATE, variables(other_invoice),
                   "invoiceCancellationRequestCreate",
                   f"No invoice with id {other_invoice.pk} in your clinics.")
