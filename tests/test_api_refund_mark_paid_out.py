"""refundMarkPaidOut: staff paid a manual refund back outside the system."""

from decimal import Decimal

import pytest

from audit.models import Action
from billing.access import NO_PERMISSION
from billing.services import payment_record
from refunds.models import Refund, RefundStatus
from refunds.rules import PAYOUT_NOT_AWAITING
from refunds.services import credit_note_create, refund_mark_paid_out

from .api_helpers import (
    REFUND_FIELDS,
    WRITE,
    api_client_of,
    api_token,
    audit_trail,
    mutate,
    mutate_refused,
    mutate_without_scope,
)
from .factories import PaymentMethodFactory

D = Decimal

MARK_PAID_OUT = f"""
mutation ($refundId: ID!, $remarks: String) {{
  refundMarkPaidOut(refundId: $refundId, remarks: $remarks) {{
    refund {{ {REFUND_FIELDS} }}
    errors
  }}
}}
"""


@pytest.fixture
def cash_refund(make_invoice, pay, reason, clerk):
    """A full refund of an invoice paid in cash, awaiting its payout."""
    invoice = make_invoice()
    pay(invoice, "28.700")
    return credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                              actor=clerk).refunds.get()


def variables(refund, remarks="Paid at the front desk"):
    return {"refundId": str(refund.pk), "remarks": remarks}


def test_it_records_the_payout(client, token, cash_refund, clerk):
    payload = mutate(client, token, MARK_PAID_OUT, variables(cash_refund), "refundMarkPaidOut")

    assert payload == {"errors": [], "refund": {
        "id": str(cash_refund.pk), "status": "PAID_OUT", "amount": "28.700",
        "currencyId": "OMR", "paymentId": str(cash_refund.payment_id),
        "invoiceId": str(cash_refund.invoice_id), "creditNoteId": str(cash_refund.credit_note_id),
        "gatewayReference": "", "failureReason": ""}}
    refund = Refund.objects.get()
    assert (refund.status, refund.paid_out_by) == (RefundStatus.PAID_OUT, clerk)
    assert refund.completed_at is not None
    assert audit_trail(refund)[-1] == (
        Action.REFUND_PAID_OUT, "awaiting_payout", "paid_out", D("28.700"), "clerk",
        api_client_of(token))
    assert refund.invoice.audit_events.get(action=Action.REFUND_PAID_OUT).remarks == (
        "Paid at the front desk")


def test_a_refund_already_paid_out_cannot_be_marked_again(client, token, cash_refund, clerk):
    refund_mark_paid_out(refund=cash_refund, actor=clerk)

    mutate_refused(client, token, MARK_PAID_OUT, variables(cash_refund), "refundMarkPaidOut",
                   PAYOUT_NOT_AWAITING.format(status="paid out"))


def test_a_gateway_refund_cannot_be_marked_paid_out(client, token, make_invoice, pay,
                                                    online_card, reason, clerk):
    invoice = make_invoice()
    pay(invoice, "28.700", method=online_card, reference="ch_1")
    refund = credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                            actor=clerk).refunds.get()

    mutate_refused(client, token, MARK_PAID_OUT, variables(refund), "refundMarkPaidOut",
                   PAYOUT_NOT_AWAITING.format(status="pending"))


def test_a_member_without_the_permission_cannot_mark_it_paid_out(client, approver,
                                                                 cash_refund):
    mutate_refused(client, api_token(approver, WRITE), MARK_PAID_OUT, variables(cash_refund),
                   "refundMarkPaidOut", NO_PERMISSION.format(action="refund invoices"))


def test_it_needs_the_billing_write_scope(client, clerk, cash_refund):
    mutate_without_scope(client, api_token(clerk, "billing:read"), MARK_PAID_OUT,
                         variables(cash_refund), "billing:write")


def test_a_refund_of_another_clinic_is_not_found(client, token, other_invoice, outsider,
                                                 reason):
    cash = PaymentMethodFactory(clinic=other_invoice.clinic, name="Cash")
    payment_record(invoice=other_invoice, method=cash, amount=D("28.70"), actor=outsider)
    refund = credit_note_create(full=True, invoice=other_invoice, dispute_reason=reason,
                            actor=outsider).refunds.get()

    mutate_refused(client, token, MARK_PAID_OUT, variables(refund), "refundMarkPaidOut",
                   f"No refund with id {refund.pk} in your clinics.")
