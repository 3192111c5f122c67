"""creditNoteCreate: credit chosen lines (amounts without tax); what goes beyond the balance
due is refunded."""

from decimal import Decimal

import pytest

from approvals.gate import LINE_NOT_APPROVED
from approvals.rules import AWAITING_DECISION, NEEDS_REFUND_REQUEST
from approvals.services import refund_request_create, request_approve
from audit.models import Action
from billing.access import NO_PERMISSION
from billing.breakdown import (
    LINE_AMOUNT_NOT_POSITIVE,
    LINE_AMOUNT_PLACES,
    LINE_NOT_ON_INVOICE,
    LINE_NOTHING_LEFT,
    LINE_OVER,
    LINE_TWICE,
    NO_LINES,
    PAYMENT_FULLY_REFUNDED,
    CreditLineInput,
)
from billing.models import InvoiceStatus
from billing.rules import INVOICE_CANCELLED, INVOICE_DRAFT
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

CREDIT_NOTE_CREATE = f"""
mutation ($invoiceId: ID!, $disputeReasonId: ID!, $lines: [CreditNoteLineInput!]!,
          $paymentId: ID, $remarks: String) {{
  creditNoteCreate(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId, lines: $lines,
                   paymentId: $paymentId, remarks: $remarks) {{
    creditNote {{ {CREDIT_NOTE_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def invoice(make_invoice):
    return make_invoice()


@pytest.fixture
def lines(invoice):
    """Line A (2 × 10.000) and line B (1 × 7.333)."""
    return list(invoice.lines.order_by("position"))


def variables(invoice, reason, lines, payment=None, remarks=""):
    return {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk),
            "lines": [{"invoiceLineId": str(line.pk if hasattr(line, "pk") else line),
                       **({"amount": amount} if amount is not None else {})}
                      for line, amount in lines],
            "paymentId": str(payment.pk) if payment else None, "remarks": remarks}


def test_refunding_part_of_a_paid_line_pays_it_back(client, token, invoice, lines, pay,
                                                    reason, clinic):
    pay(invoice, "28.700")
    line_a = lines[0]

    payload = mutate(client, token, CREDIT_NOTE_CREATE,
                     variables(invoice, reason, [(line_a, "5.000")],
                               remarks="Shorter session"), "creditNoteCreate")

    note = CreditNote.objects.get()
    assert payload == {"errors": [], "creditNote": {
        "id": str(note.pk), "number": "CN-MUSCAT-000001", "kind": "REFUND", "amount": "5.250",
        "subtotal": "5.000", "taxAmount": "0.250", "amountApplied": "0.000",
        "amountUnapplied": "5.250", "currencyId": "OMR", "creditedInvoiceId": str(invoice.pk),
        "entityId": str(clinic.pk), "accountId": str(invoice.account_id),
        "disputeReasonId": str(reason.pk), "disputeId": None, "isCredit": False,
        "isLegacy": False, "description": "Shorter session",
        "lines": [{"invoiceLineId": str(line_a.pk), "net": "5.000", "tax": "0.250",
                   "total": "5.250"}]}}
    line_a.refresh_from_db()
    invoice.refresh_from_db()
    assert (line_a.credited_net, line_a.credited_tax) == (D("5.000"), D("0.250"))
    assert (invoice.status, invoice.amount_credited, invoice.amount_refunded) == (
        InvoiceStatus.PARTIALLY_REFUNDED, D("5.250"), D("5.250"))
    refund = Refund.objects.get()
    assert (refund.status, refund.amount, refund.method_name) == (
        RefundStatus.AWAITING_PAYOUT, D("5.250"), "Cash")
    client_id = api_client_of(token)
    assert audit_trail(note) == [
        (Action.CREDIT_NOTE_ISSUED, "paid", "partially_refunded", D("5.250"), "clerk", client_id)]
    assert audit_trail(refund) == [
        (Action.REFUND_CREATED, "", "awaiting_payout", D("5.250"), "clerk", client_id)]


def test_crediting_an_unpaid_line_reduces_the_balance_and_refunds_nothing(
        client, token, invoice, lines, reason):
    payload = mutate(client, token, CREDIT_NOTE_CREATE,
                     variables(invoice, reason, [(lines[1], None)]), "creditNoteCreate")

    note = payload["creditNote"]
    assert (note["kind"], note["amount"], note["amountApplied"], note["amountUnapplied"],
            note["isCredit"]) == ("CREDIT", "7.700", "7.700", "0.000", True)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == (InvoiceStatus.ISSUED, D("21.000"))
    assert not Refund.objects.exists()


def test_it_refunds_against_the_chosen_payment(client, token, invoice, lines, pay,
                                               reason):
    first = pay(invoice, "20.000")
    pay(invoice, "8.700")

    mutate(client, token, CREDIT_NOTE_CREATE,
           variables(invoice, reason, [(lines[0], "5.000")], payment=first),
           "creditNoteCreate")

    assert list(Refund.objects.values_list("payment", "amount")) == [(first.pk, D("5.250"))]


@pytest.mark.parametrize(("amount", "message"), [
    ("0", LINE_AMOUNT_NOT_POSITIVE.format(line="Item 1")),
    ("-1.000", LINE_AMOUNT_NOT_POSITIVE.format(line="Item 1")),
    ("1.0005", LINE_AMOUNT_PLACES.format(currency="OMR", places=3, amount="1.0005",
                                         line="Item 1")),
    ("20.001", LINE_OVER.format(remaining="20.000 OMR", amount="20.001 OMR", line="Item 1")),
])
def test_it_refuses_an_amount_the_line_cannot_take(client, token, invoice, lines, pay,
                                                   reason, amount, message):
    pay(invoice, "28.700")

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], amount)]), "creditNoteCreate",
                   message)


def test_it_refuses_more_than_what_remains_on_a_partly_credited_line(
        client, token, invoice, lines, reason, clerk):
    credit_note_create(invoice=invoice, lines=[CreditLineInput(lines[0], D("15.000"))],
                       dispute_reason=reason, actor=clerk)

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "5.001")]), "creditNoteCreate",
                   LINE_OVER.format(remaining="5.000 OMR", amount="5.001 OMR", line="Item 1"))


def test_it_refuses_a_line_already_fully_credited(client, token, invoice, lines, reason,
                                                  clerk):
    credit_note_create(invoice=invoice, lines=[CreditLineInput(lines[1])],
                       dispute_reason=reason, actor=clerk)

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[1], None)]), "creditNoteCreate",
                   LINE_NOTHING_LEFT.format(line="Item 2"))


def test_it_refuses_no_lines(client, token, invoice, reason):
    mutate_refused(client, token, CREDIT_NOTE_CREATE, variables(invoice, reason, []),
                   "creditNoteCreate", NO_LINES)


def test_it_refuses_a_line_chosen_twice(client, token, invoice, lines, reason):
    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000"), (lines[0], "1.000")]),
                   "creditNoteCreate", LINE_TWICE.format(line="Item 1"))


@pytest.mark.parametrize("line_id", ["other invoice", "999999", "not-a-number"])
def test_it_refuses_a_line_that_is_not_on_the_invoice(client, token, invoice, make_invoice,
                                                      reason, line_id):
    if line_id == "other invoice":
        line_id = make_invoice().lines.first().pk

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(line_id, "1.000")]), "creditNoteCreate",
                   LINE_NOT_ON_INVOICE.format(invoice=INVOICE))


def test_it_refuses_a_draft(client, token, make_invoice, reason):
    draft = make_invoice(issue=False)

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(draft, reason, [(draft.lines.first(), None)]),
                   "creditNoteCreate", INVOICE_DRAFT)


def test_it_refuses_a_cancelled_invoice(client, token, invoice, lines, reason, clerk):
    invoice_cancel(invoice=invoice, remarks="Entered twice", actor=clerk)

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000")]), "creditNoteCreate",
                   INVOICE_CANCELLED.format(invoice=INVOICE))


def test_it_refuses_a_dispute_reason_no_longer_in_use(client, token, invoice, lines,
                                                      reason):
    reason.is_active = False
    reason.save(update_fields=["is_active"])

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000")]), "creditNoteCreate",
                   REASON_INACTIVE.format(reason="Billing error"))


def test_it_refuses_a_payment_already_fully_refunded(client, token, invoice, lines, pay,
                                                     reason, clerk):
    first = pay(invoice, "7.700")
    pay(invoice, "21.000")
    credit_note_create(invoice=invoice, lines=[CreditLineInput(lines[1])],
                       dispute_reason=reason, actor=clerk, payment=first)

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000")], payment=first),
                   "creditNoteCreate", PAYMENT_FULLY_REFUNDED.format(payment="7.700 OMR"))


def test_it_refuses_a_payment_of_another_invoice(client, token, invoice, lines, make_invoice,
                                                 pay, reason):
    payment = pay(make_invoice(), "1.000")

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000")], payment=payment),
                   "creditNoteCreate",
                   f"No payment on {INVOICE} with id {payment.pk} in your clinics.")


@pytest.mark.parametrize(("paid", "action"), [
    ("28.700", "refund invoices"),
    (None, "credit invoice lines"),
])
def test_a_member_without_the_permission_cannot_refund_or_credit(
        client, approver, invoice, lines, pay, reason, paid, action):
    if paid:
        pay(invoice, paid)

    mutate_refused(client, api_token(approver, WRITE), CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000")]), "creditNoteCreate",
                   NO_PERMISSION.format(action=action))


def test_with_approval_it_refuses_without_a_request(client, token, approval_clinic, invoice,
                                                    lines, reason):
    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000")]), "creditNoteCreate",
                   NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic"))


def test_with_approval_it_refuses_while_the_request_awaits_a_decision(
        client, token, approval_clinic, invoice, lines, reason, clerk):
    refund_request_create(invoice=invoice, remarks="Not rendered", actor=clerk)

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[0], "1.000")]), "creditNoteCreate",
                   AWAITING_DECISION.format(kind="Invoice Refund Request", invoice=INVOICE))


def test_with_approval_it_credits_only_the_approved_lines(
        client, token, approval_clinic, invoice, lines, reason, clerk, approver):
    request = refund_request_create(invoice=invoice, remarks="Not rendered", actor=clerk,
                                    lines=[CreditLineInput(lines[0], D("5.000"))])
    request_approve(financial_request=request, actor=approver)

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(invoice, reason, [(lines[1], None)]), "creditNoteCreate",
                   LINE_NOT_APPROVED.format(line="Item 2"))
    payload = mutate(client, token, CREDIT_NOTE_CREATE,
                     variables(invoice, reason, [(lines[0], "5.000")]),
                     "creditNoteCreate")

    assert (payload["creditNote"]["amount"], payload["creditNote"]["disputeId"]) == (
        "5.250", str(request.pk))
    request.refresh_from_db()
    assert request.status == "completed"


def test_it_needs_the_billing_write_scope(client, clerk, invoice, lines, reason):
    mutate_without_scope(client, api_token(clerk, "billing:read"), CREDIT_NOTE_CREATE,
                         variables(invoice, reason, [(lines[0], "1.000")]),
                         "billing:write")


def test_an_invoice_of_another_clinic_is_not_found(client, token, other_invoice, reason):
    line = other_invoice.lines.first()

    mutate_refused(client, token, CREDIT_NOTE_CREATE,
                   variables(other_invoice, reason, [(line, "1.00")]),
                   "creditNoteCreate", f"No invoice with id {other_invoice.pk} in your clinics.")
