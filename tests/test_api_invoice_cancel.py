"""invoiceCancel: void an issued invoice with a cancellation credit note for its balance."""

from decimal import Decimal

import pytest

from approvals.models import RequestStatus
from approvals.rules import AWAITING_DECISION, NEEDS_CANCELLATION_REQUEST, OPEN_REFUND_REQUEST
from approvals.services import (
    cancellation_request_create,
    refund_request_create,
    request_approve,
)
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.breakdown import CreditLineInput
from billing.models import InvoiceStatus
from billing.rules import CANCEL_ALREADY, CANCEL_DRAFT, CANCEL_NOTHING_LEFT, CANCEL_PAID
from refunds.models import CreditNote, CreditNoteKind
from refunds.services import CANCEL_REMARKS, CANCELLATION_REASON, credit_note_create, invoice_cancel

from .api_helpers import (
    CREDIT_NOTE_FIELDS,
    WRITE,
    api_client_of,
    api_token,
    audit_trail,
    mutate,
    mutate_refused,
    mutate_without_scope,
)

D = Decimal
INVOICE = "Invoice INV-MUSCAT-000001"

INVOICE_CANCEL = f"""
mutation ($invoiceId: ID!, $remarks: String!) {{
  invoiceCancel(invoiceId: $invoiceId, remarks: $remarks) {{
    invoice {{ id number status total amountCredited balanceDue }}
    creditNote {{ {CREDIT_NOTE_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def invoice(make_invoice):
    return make_invoice()


def variables(invoice, remarks="Entered twice"):
    return {"invoiceId": str(invoice.pk), "remarks": remarks}


def test_it_cancels_the_invoice_with_a_credit_note_for_its_balance(client, token, invoice):
    payload = mutate(client, token, INVOICE_CANCEL, variables(invoice, " Entered twice "),
                     "invoiceCancel")

    note = CreditNote.objects.get()
    assert payload["errors"] == []
    assert payload["invoice"] == {
        "id": str(invoice.pk), "number": "INV-MUSCAT-000001", "status": "CANCELLED",
        "total": "28.700", "amountCredited": "28.700", "balanceDue": "0.000"}
    assert {key: payload["creditNote"][key] for key in (
        "id", "number", "kind", "amount", "subtotal", "taxAmount", "amountApplied",
        "amountUnapplied", "isCredit", "description", "disputeReasonId", "disputeId")} == {
        "id": str(note.pk), "number": "CN-MUSCAT-000001", "kind": "CANCELLATION",
        "amount": "28.700", "subtotal": "27.333", "taxAmount": "1.367",
        "amountApplied": "28.700", "amountUnapplied": "0.000", "isCredit": True,
        "description": "Entered twice", "disputeReasonId": str(note.dispute_reason_id),
        "disputeId": None}
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_credited, note.kind, note.dispute_reason.name) == (
        InvoiceStatus.CANCELLED, D("28.700"), CreditNoteKind.CANCELLATION, CANCELLATION_REASON)
    assert audit_trail(note) == [
        (Action.INVOICE_CANCELLED, "issued", "cancelled", D("28.700"), "clerk",
         api_client_of(token))]


def test_it_credits_only_the_balance_left_after_a_credit(client, token, invoice, reason,
                                                         clerk):
    line_b = invoice.lines.order_by("position").last()
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk)

    payload = mutate(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel")

    assert (payload["creditNote"]["amount"], payload["invoice"]["amountCredited"],
            payload["invoice"]["status"]) == ("21.000", "28.700", "CANCELLED")


def test_it_refuses_while_money_paid_is_not_refunded(client, token, invoice, pay):
    pay(invoice, "10.000")

    payload = mutate_refused(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel",
                             CANCEL_PAID.format(amount="10.000 OMR", invoice=INVOICE))
    # refunding what was paid credits the whole invoice, which then ends refunded: the message
    # says to refund instead, never "refund first, then cancel"
    assert payload["errors"] == [
        "Only an invoice nothing has been paid on can be cancelled, and 10.000 OMR paid on "
        "Invoice INV-MUSCAT-000001 has not been refunded: refund it instead. A full refund "
        "credits the whole invoice."]


def test_it_refuses_a_fully_refunded_invoice(client, token, invoice, pay, reason, clerk):
    pay(invoice, "28.700")
    credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)

    mutate_refused(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel",
                   CANCEL_NOTHING_LEFT.format(invoice=INVOICE))


def test_it_refuses_a_fully_credited_invoice(client, token, invoice, reason, clerk):
    credit_note_create(invoice=invoice,
                       lines=[CreditLineInput(line) for line in invoice.lines.all()],
                       dispute_reason=reason, actor=clerk)

    mutate_refused(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel",
                   CANCEL_NOTHING_LEFT.format(invoice=INVOICE))


def test_it_refuses_a_draft(client, token, make_invoice):
    mutate_refused(client, token, INVOICE_CANCEL, variables(make_invoice(issue=False)),
                   "invoiceCancel", CANCEL_DRAFT)


def test_it_refuses_an_invoice_already_cancelled(client, token, invoice, clerk):
    invoice_cancel(invoice=invoice, remarks="Entered twice", actor=clerk)

    mutate_refused(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel",
                   CANCEL_ALREADY.format(invoice=INVOICE))


def test_it_refuses_blank_remarks(client, token, invoice):
    mutate_refused(client, token, INVOICE_CANCEL, variables(invoice, "   "), "invoiceCancel",
                   CANCEL_REMARKS)


def test_a_member_without_the_permission_cannot_cancel(client, approver, invoice):
    mutate_refused(client, api_token(approver, WRITE), INVOICE_CANCEL, variables(invoice),
                   "invoiceCancel", NO_PERMISSION.format(action="cancel invoices"))


# -- where the clinic needs approval --------------------------------------------------------------


def test_with_approval_it_refuses_without_a_request(client, token, approval_clinic, invoice):
    mutate_refused(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel",
                   NEEDS_CANCELLATION_REQUEST.format(clinic="Muscat Clinic"))


def test_with_approval_it_refuses_while_the_request_awaits_a_decision(
        client, token, approval_clinic, invoice, clerk):
    cancellation_request_create(invoice=invoice, remarks="Entered twice", actor=clerk)

    mutate_refused(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel",
                   AWAITING_DECISION.format(kind="Invoice Cancellation Request",
                                            invoice=INVOICE))


def test_with_approval_the_approved_request_authorises_it_and_is_completed(
        client, token, approval_clinic, invoice, clerk, approver):
    request = cancellation_request_create(invoice=invoice, remarks="Entered twice", actor=clerk)
    request_approve(financial_request=request, actor=approver)

    payload = mutate(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel")

    assert (payload["invoice"]["status"], payload["creditNote"]["disputeId"]) == (
        "CANCELLED", str(request.pk))
    request.refresh_from_db()
    assert (request.status, request.completed_by) == (RequestStatus.COMPLETED, clerk)


def test_with_approval_it_refuses_while_a_refund_request_is_open(
        client, token, approval_clinic, invoice, clerk, approver):
    cancellation = cancellation_request_create(invoice=invoice, remarks="Entered twice",
                                               actor=clerk)
    request_approve(financial_request=cancellation, actor=approver)
    refund_request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)

    mutate_refused(client, token, INVOICE_CANCEL, variables(invoice), "invoiceCancel",
                   OPEN_REFUND_REQUEST.format(invoice=INVOICE, pk=refund_request.pk,
                                              status="requested"))


def test_it_needs_the_billing_write_scope(client, clerk, invoice):
    mutate_without_scope(client, api_token(clerk, "billing:read approvals:write"),
                         INVOICE_CANCEL, variables(invoice), "billing:write")


def test_an_invoice_of_another_clinic_is_not_found(client, token, other_invoice):
    mutate_refused(client, token, INVOICE_CANCEL, variables(other_invoice), "invoiceCancel",
                   f"No invoice with id {other_invoice.pk} in your clinics.")
