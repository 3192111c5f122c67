"""invoiceRefund: the full refund of everything still creditable on a paid invoice."""

from decimal import Decimal

import pytest

from approvals.gate import LINE_OVER_APPROVED
from approvals.models import FinancialRequest, RequestStatus
from approvals.rules import AWAITING_DECISION, NEEDS_REFUND_REQUEST
from approvals.services import refund_request_create, request_approve
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.breakdown import PAYMENT_FULLY_REFUNDED, CreditLineInput
from billing.models import InvoiceStatus
from billing.rules import INVOICE_CANCELLED, INVOICE_DRAFT, NOTHING_LEFT, NOTHING_PAID
from refunds.models import CreditNote, Refund, RefundStatus
from refunds.services import REASON_INACTIVE, credit_note_create, invoice_cancel

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

INVOICE_REFUND = f"""
mutation ($invoiceId: ID!, $disputeReasonId: ID!, $paymentId: ID, $remarks: String) {{
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId,
                paymentId: $paymentId, remarks: $remarks) {{
    creditNote {{ {CREDIT_NOTE_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def paid_invoice(make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    return invoice


def variables(invoice, reason, payment=None, remarks="Patient overcharged"):
    return {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk),
            "paymentId": str(payment.pk) if payment else None, "remarks": remarks}


def test_it_refunds_everything_paid_as_a_cash_payout(client, token, paid_invoice, reason,
                                                     clinic):
    payload = mutate(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                     "invoiceRefund")

    note = CreditNote.objects.get()
    line_a, line_b = paid_invoice.lines.order_by("position")
    assert payload == {"errors": [], "creditNote": {
        "id": str(note.pk), "number": "CN-MUSCAT-000001", "kind": "REFUND", "amount": "28.700",
        "subtotal": "27.333", "taxAmount": "1.367", "amountApplied": "0.000",
        "amountUnapplied": "28.700", "currencyId": "OMR",
        "creditedInvoiceId": str(paid_invoice.pk), "entityId": str(clinic.pk),
        "accountId": str(paid_invoice.account_id), "disputeReasonId": str(reason.pk),
        "disputeId": None, "isCredit": False, "isLegacy": False,
        "description": "Patient overcharged",
        "lines": [
            {"invoiceLineId": str(line_a.pk), "net": "20.000", "tax": "1.000",
             "total": "21.000"},
            {"invoiceLineId": str(line_b.pk), "net": "7.333", "tax": "0.367", "total": "7.700"},
        ]}}
    paid_invoice.refresh_from_db()
    assert (paid_invoice.status, paid_invoice.amount_refunded, paid_invoice.balance_due) == (
        InvoiceStatus.REFUNDED, D("28.700"), D("0.000"))
    refund = Refund.objects.get()
    assert (refund.status, refund.amount, refund.credit_note) == (
        RefundStatus.AWAITING_PAYOUT, D("28.700"), note)
    client_id = api_client_of(token)
    assert audit_trail(note) == [
        (Action.CREDIT_NOTE_ISSUED, "paid", "refunded", D("28.700"), "clerk", client_id)]
    assert audit_trail(refund) == [
        (Action.REFUND_CREATED, "", "awaiting_payout", D("28.700"), "clerk", client_id)]


def test_it_refunds_only_what_remains_after_a_partial_refund(client, token, paid_invoice,
                                                             reason, clerk):
    line_a = paid_invoice.lines.order_by("position").first()
    credit_note_create(invoice=paid_invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                       dispute_reason=reason, actor=clerk)

    payload = mutate(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                     "invoiceRefund")

    assert {key: payload["creditNote"][key] for key in ("amount", "subtotal", "taxAmount")} == {
        "amount": "23.450", "subtotal": "22.333", "taxAmount": "1.117"}
    paid_invoice.refresh_from_db()
    assert (paid_invoice.status, paid_invoice.amount_refunded) == (
        InvoiceStatus.REFUNDED, D("28.700"))


def test_it_refunds_the_chosen_payment_first(client, token, make_invoice, pay, reason):
    invoice = make_invoice()
    first = pay(invoice, "10.000")
    second = pay(invoice, "18.700")
    line_b = invoice.lines.order_by("position").last()
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=invoice.created_by, payment=second)

    mutate(client, token, INVOICE_REFUND, variables(invoice, reason, payment=first),
           "invoiceRefund")

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.amount_refunded, second.amount_refunded) == (D("10.000"), D("18.700"))
    assert list(Refund.objects.order_by("pk").values_list("payment", "amount")) == [
        (second.pk, D("7.700")), (first.pk, D("10.000")), (second.pk, D("11.000"))]


def test_it_refuses_an_invoice_with_nothing_paid(client, token, make_invoice, reason):
    invoice = make_invoice()

    mutate_refused(client, token, INVOICE_REFUND, variables(invoice, reason),
                   "invoiceRefund", NOTHING_PAID.format(invoice=INVOICE))


def test_it_refuses_an_invoice_already_fully_refunded(client, token, paid_invoice,
                                                      reason, clerk):
    mutate(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
           "invoiceRefund")

    mutate_refused(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                   "invoiceRefund", NOTHING_LEFT.format(invoice=INVOICE))


def test_it_refuses_a_draft(client, token, make_invoice, reason):
    invoice = make_invoice(issue=False)

    mutate_refused(client, token, INVOICE_REFUND, variables(invoice, reason),
                   "invoiceRefund", INVOICE_DRAFT)


def test_it_refuses_a_cancelled_invoice(client, token, make_invoice, reason, clerk):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Entered twice", actor=clerk)

    mutate_refused(client, token, INVOICE_REFUND, variables(invoice, reason),
                   "invoiceRefund", INVOICE_CANCELLED.format(invoice=INVOICE))


def test_it_refuses_a_dispute_reason_no_longer_in_use(client, token, paid_invoice,
                                                      reason):
    reason.is_active = False
    reason.save(update_fields=["is_active"])

    mutate_refused(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                   "invoiceRefund", REASON_INACTIVE.format(reason="Billing error"))


def test_it_refuses_an_unknown_dispute_reason(client, token, paid_invoice):
    mutate_refused(client, token, INVOICE_REFUND,
                   {"invoiceId": str(paid_invoice.pk), "disputeReasonId": "999999"},
                   "invoiceRefund",
                   "No dispute reason with id 999999: see the disputeReasons query.")


def test_it_refuses_a_payment_of_another_invoice(client, token, paid_invoice, make_invoice, pay,
                                                 reason):
    other = make_invoice()
    payment = pay(other, "1.000")

    mutate_refused(client, token, INVOICE_REFUND,
                   variables(paid_invoice, reason, payment=payment), "invoiceRefund",
                   f"No payment on {INVOICE} with id {payment.pk} in your clinics.")


def test_it_refuses_a_payment_already_fully_refunded(client, token, make_invoice, pay,
                                                     reason, clerk):
    invoice = make_invoice()
    first = pay(invoice, "7.700")
    pay(invoice, "21.000")
    line_b = invoice.lines.order_by("position").last()
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk, payment=first)

    mutate_refused(client, token, INVOICE_REFUND,
                   variables(invoice, reason, payment=first), "invoiceRefund",
                   PAYMENT_FULLY_REFUNDED.format(payment="7.700 OMR"))


def test_a_member_without_the_permission_cannot_refund(client, approver, paid_invoice,
                                                       reason):
    mutate_refused(client, api_token(approver, WRITE), INVOICE_REFUND,
                   variables(paid_invoice, reason), "invoiceRefund",
                   NO_PERMISSION.format(action="refund invoices"))


# -- where the clinic needs approval --------------------------------------------------------------


def test_with_approval_it_refuses_without_a_request(client, token, approval_clinic, paid_invoice,
                                                    reason):
    mutate_refused(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                   "invoiceRefund", NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic"))


def test_with_approval_it_refuses_while_the_request_awaits_a_decision(
        client, token, approval_clinic, paid_invoice, reason, clerk):
    refund_request_create(invoice=paid_invoice, remarks="Overcharged", actor=clerk)

    mutate_refused(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                   "invoiceRefund", AWAITING_DECISION.format(kind="Invoice Refund Request",
                                                             invoice=INVOICE))


def test_with_approval_the_approved_request_authorises_it_and_is_completed(
        client, token, approval_clinic, paid_invoice, reason, clerk, approver):
    request = refund_request_create(invoice=paid_invoice, remarks="Overcharged", actor=clerk)
    request_approve(financial_request=request, actor=approver)

    payload = mutate(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                     "invoiceRefund")

    assert (payload["creditNote"]["amount"], payload["creditNote"]["disputeId"]) == (
        "28.700", str(request.pk))
    request.refresh_from_db()
    assert (request.status, request.completed_by, request.credit_note.amount) == (
        RequestStatus.COMPLETED, clerk, D("28.700"))
    assert [event[:3] for event in audit_trail(request)][-1] == (
        Action.REQUEST_COMPLETED, "approved", "completed")


def test_with_approval_it_refuses_more_than_the_approved_lines(
        client, token, approval_clinic, paid_invoice, reason, clerk, approver):
    line_a = paid_invoice.lines.order_by("position").first()
    request = refund_request_create(invoice=paid_invoice, remarks="Overcharged", actor=clerk,
                                    lines=[CreditLineInput(line_a, D("5.000"))])
    request_approve(financial_request=request, actor=approver)

    mutate_refused(client, token, INVOICE_REFUND, variables(paid_invoice, reason),
                   "invoiceRefund", LINE_OVER_APPROVED.format(
                       approved="5.000 OMR", amount="20.000 OMR", line="Item 1"))
    assert FinancialRequest.objects.get().status == RequestStatus.APPROVED


def test_it_needs_the_billing_write_scope(client, clerk, paid_invoice, reason):
    mutate_without_scope(client, api_token(clerk, "billing:read approvals:write"),
                         INVOICE_REFUND, variables(paid_invoice, reason),
                         "billing:write")


def test_an_invoice_of_another_clinic_is_not_found(client, token, other_invoice, reason):
    mutate_refused(client, token, INVOICE_REFUND, variables(other_invoice, reason),
                   "invoiceRefund", f"No invoice with id {other_invoice.pk} in your clinics.")
