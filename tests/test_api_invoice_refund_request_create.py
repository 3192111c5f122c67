"""invoiceRefundRequestCreate: ask a financial approver for a refund or credit (clinics whose
refunds need approval), optionally proposing exact lines and amounts."""

from decimal import Decimal

import pytest
from django.core import mail

from approvals.models import FinancialRequest, RequestKind, RequestStatus
from approvals.rules import ALREADY_OPEN, DIRECT_POLICY
from approvals.services import REMARKS_REQUIRED, refund_request_create, request_withdraw
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.breakdown import LINE_OVER, CreditLineInput
from billing.models import Policy
from billing.rules import INVOICE_CANCELLED, INVOICE_DRAFT, NOTHING_LEFT
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

D = Decimal
INVOICE = "Invoice INV-MUSCAT-000001"

REFUND_REQUEST_CREATE = f"""
mutation ($invoiceId: ID!, $remarks: String!, $lines: [RequestLineInput!]) {{
  invoiceRefundRequestCreate(invoiceId: $invoiceId, remarks: $remarks, lines: $lines) {{
    financialRequest {{ {REQUEST_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def invoice(approval_clinic, make_invoice):
    return make_invoice()


def variables(invoice, remarks="Service not rendered", lines=None):
    return {"invoiceId": str(invoice.pk), "remarks": remarks,
            "lines": None if lines is None else [
                {"invoiceLineId": str(line.pk), **({"amount": amount} if amount else {})}
                for line, amount in lines]}


def test_it_submits_the_request_and_notifies_the_approvers(
        client, token, invoice, approver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payload = mutate(client, token, REFUND_REQUEST_CREATE,
                         variables(invoice, " Service not rendered "),
                         "invoiceRefundRequestCreate")

    request = FinancialRequest.objects.get()
    assert payload == {"errors": [], "financialRequest": {
        "id": str(request.pk), "kind": "REFUND", "status": "REQUESTED",
        "invoiceId": str(invoice.pk), "remarks": "Service not rendered", "requestedBy": "clerk",
        "decidedBy": None, "decisionRemarks": "", "creditNoteId": None}}
    assert (request.kind, request.status, request.requested_by.username,
            request.lines.count()) == (RequestKind.REFUND, RequestStatus.REQUESTED, "clerk", 0)
    assert audit_trail(request) == [
        (Action.REQUEST_SUBMITTED, "", "requested", None, "clerk", api_client_of(token))]
    assert [message.to for message in mail.outbox] == [["approver@clinic.test"]]


def test_it_records_the_proposed_lines_an_omitted_amount_being_all_that_remains(
        client, token, invoice):
    line_a, line_b = invoice.lines.order_by("position")

    mutate(client, token, REFUND_REQUEST_CREATE,
           variables(invoice, lines=[(line_a, "5.000"), (line_b, None)]),
           "invoiceRefundRequestCreate")

    request = FinancialRequest.objects.get()
    assert list(request.lines.order_by("invoice_line__position").values_list(
        "invoice_line", "amount")) == [(line_a.pk, D("5.000")), (line_b.pk, D("7.333"))]
    assert audit_trail(request)[0][3] == D("12.333")


@pytest.mark.parametrize(("remarks", "message"), [
    ("  ", REMARKS_REQUIRED),
    ("x" * 1001, REMARKS_TOO_LONG.format(limit=1000)),
])
def test_it_refuses_missing_or_overlong_remarks(client, token, invoice, remarks, message):
    mutate_refused(client, token, REFUND_REQUEST_CREATE, variables(invoice, remarks),
                   "invoiceRefundRequestCreate", message)


def test_it_refuses_proposed_lines_the_refund_could_not_carry_out(client, token, invoice):
    line_a = invoice.lines.order_by("position").first()

    mutate_refused(client, token, REFUND_REQUEST_CREATE,
                   variables(invoice, lines=[(line_a, "20.001")]), "invoiceRefundRequestCreate",
                   LINE_OVER.format(remaining="20.000 OMR", amount="20.001 OMR", line="Item 1"))


def test_it_refuses_a_second_open_request(client, token, invoice, clerk2):
    first = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk2)

    mutate_refused(client, token, REFUND_REQUEST_CREATE, variables(invoice),
                   "invoiceRefundRequestCreate", ALREADY_OPEN.format(
                       invoice=INVOICE, kind="Invoice Refund Request", pk=first.pk,
                       status="requested", requester="clerk2"))


def test_a_withdrawn_request_does_not_block_a_new_one(client, token, invoice, clerk):
    request_withdraw(financial_request=refund_request_create(invoice=invoice, remarks="Oops",
                                                             actor=clerk),
                     actor=clerk)

    payload = mutate(client, token, REFUND_REQUEST_CREATE, variables(invoice),
                     "invoiceRefundRequestCreate")

    assert payload["financialRequest"]["status"] == "REQUESTED"


def test_it_refuses_where_the_clinic_refunds_directly(client, token, clinic, make_invoice):
    invoice = make_invoice()

    mutate_refused(client, token, REFUND_REQUEST_CREATE, variables(invoice),
                   "invoiceRefundRequestCreate", DIRECT_POLICY.format(
                       clinic="Muscat Clinic", what="refunds and credits invoices"))


def test_it_refuses_a_draft(client, token, approval_clinic, make_invoice):
    draft = make_invoice(issue=False)

    mutate_refused(client, token, REFUND_REQUEST_CREATE, variables(draft),
                   "invoiceRefundRequestCreate",
                   INVOICE_DRAFT)


def test_it_refuses_a_cancelled_invoice(client, token, clinic, make_invoice, clerk):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Entered twice", actor=clerk)
    set_policy(clinic, refund=Policy.APPROVAL)

    mutate_refused(client, token, REFUND_REQUEST_CREATE, variables(invoice),
                   "invoiceRefundRequestCreate",
                   INVOICE_CANCELLED.format(invoice=INVOICE))


def test_it_refuses_an_invoice_with_nothing_left_to_credit(client, token, clinic, make_invoice,
                                                           reason, clerk):
    invoice = make_invoice()
    credit_note_create(invoice=invoice,
                       lines=[CreditLineInput(line) for line in invoice.lines.all()],
                       dispute_reason=reason, actor=clerk)
    set_policy(clinic, refund=Policy.APPROVAL)

    mutate_refused(client, token, REFUND_REQUEST_CREATE, variables(invoice),
                   "invoiceRefundRequestCreate", NOTHING_LEFT.format(invoice=INVOICE))


def test_a_member_without_the_permission_cannot_submit_requests(client, approver, invoice):
    mutate_refused(client, api_token(approver, WRITE), REFUND_REQUEST_CREATE, variables(invoice),
                   "invoiceRefundRequestCreate", NO_PERMISSION.format(action="submit requests"))


def test_it_needs_the_billing_write_scope(client, clerk, invoice):
    mutate_without_scope(client, api_token(clerk, "billing:read approvals:write"),
                         REFUND_REQUEST_CREATE, variables(invoice), "billing:write")


def test_an_invoice_of_another_clinic_is_not_found(client, token, other_invoice):
    mutate_refused(client, token, REFUND_REQUEST_CREATE, variables(other_invoice),
                   "invoiceRefundRequestCreate",
                   f"No invoice with id {other_invoice.pk} in your clinics.")
