"""refundRetry: send a declined gateway refund again, with the same idempotency key."""

from decimal import Decimal

import pytest

from audit.models import Action
from billing.access import NO_PERMISSION
from billing.models import Payment
from billing.services import payment_record
from refunds.models import Refund, RefundStatus
from refunds.rules import RETRY_NOT_FAILED
from refunds.services import credit_note_create

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
DECLINED = "The card issuer declined the refund (sandbox)."

REFUND_RETRY = f"""
mutation ($refundId: ID!) {{
  refundRetry(refundId: $refundId) {{
    refund {{ {REFUND_FIELDS} }}
    errors
  }}
}}
"""


def refund_by_card(make_invoice, pay, online_card, reason, clerk, capture, reference):
    """A full refund of an invoice paid by card, sent to the sandbox gateway."""
    invoice = make_invoice()
    pay(invoice, "28.700", method=online_card, reference=reference)
    with capture(execute=True):
        note = credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
    return note.refunds.get()


@pytest.fixture
def failed_refund(make_invoice, pay, online_card, reason, clerk,
                  django_capture_on_commit_callbacks):
    refund = refund_by_card(make_invoice, pay, online_card, reason, clerk,
                            django_capture_on_commit_callbacks, "fail_card_declined")
    refund.refresh_from_db()
    assert (refund.status, refund.failure_reason) == (RefundStatus.FAILED, DECLINED)
    return refund


def variables(refund):
    return {"refundId": str(refund.pk)}


def test_it_sends_the_failed_refund_again_after_commit(client, token, failed_refund,
                                                       django_capture_on_commit_callbacks):
    # the card can take the refund now
    Payment.objects.filter(pk=failed_refund.payment_id).update(reference="ch_1")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        payload = mutate(client, token, REFUND_RETRY, variables(failed_refund), "refundRetry")
        # answered before the gateway is called
        assert Refund.objects.get().status == RefundStatus.PENDING

    assert payload["errors"] == []
    assert {key: value for key, value in payload["refund"].items()
            if key != "failureReason"} == {
        "id": str(failed_refund.pk), "status": "PENDING", "amount": "28.700",
        "currencyId": "OMR", "paymentId": str(failed_refund.payment_id),
        "invoiceId": str(failed_refund.invoice_id),
        "creditNoteId": str(failed_refund.credit_note_id), "gatewayReference": ""}
    assert len(callbacks) == 1
    refund = Refund.objects.get()
    assert (refund.status, refund.attempts, refund.failure_reason) == (
        RefundStatus.SUCCEEDED, 2, "")
    assert refund.gateway_reference.startswith("sbx_re_")
    assert [event[:3] for event in audit_trail(refund)] == [
        (Action.REFUND_CREATED, "", "pending"),
        (Action.REFUND_FAILED, "pending", "failed"),
        (Action.REFUND_RETRIED, "failed", "pending"),
        (Action.REFUND_SUCCEEDED, "pending", "succeeded"),
    ]
    assert audit_trail(refund)[2][3:] == (D("28.700"), "clerk", api_client_of(token))


def test_a_declined_retry_fails_again_and_can_be_retried_later(
        client, token, failed_refund, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        mutate(client, token, REFUND_RETRY, variables(failed_refund), "refundRetry")

    refund = Refund.objects.get()
    assert (refund.status, refund.attempts, refund.failure_reason) == (
        RefundStatus.FAILED, 2, DECLINED)


@pytest.mark.parametrize(("reference", "status"), [
    ("ch_1", "succeeded"),
    ("pending_1", "pending"),
])
def test_only_a_failed_refund_can_be_retried(client, token, make_invoice, pay, online_card,
                                             reason, clerk,
                                             django_capture_on_commit_callbacks, reference,
                                             status):
    refund = refund_by_card(make_invoice, pay, online_card, reason, clerk,
                            django_capture_on_commit_callbacks, reference)

    mutate_refused(client, token, REFUND_RETRY, variables(refund), "refundRetry",
                   RETRY_NOT_FAILED.format(status=status))


def test_a_manual_refund_cannot_be_retried(client, token, make_invoice, pay, reason,
                                           clerk):
    invoice = make_invoice()
    pay(invoice, "28.700")
    refund = credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                            actor=clerk).refunds.get()

    mutate_refused(client, token, REFUND_RETRY, variables(refund), "refundRetry",
                   RETRY_NOT_FAILED.format(status="awaiting payout"))


def test_a_member_without_the_permission_cannot_retry(client, approver, failed_refund):
    mutate_refused(client, api_token(approver, WRITE), REFUND_RETRY, variables(failed_refund),
                   "refundRetry", NO_PERMISSION.format(action="refund invoices"))


def test_it_needs_the_billing_write_scope(client, clerk, failed_refund):
    mutate_without_scope(client, api_token(clerk, "billing:read approvals:write"), REFUND_RETRY,
                         variables(failed_refund), "billing:write")


def test_a_refund_of_another_clinic_is_not_found(client, token, other_invoice, outsider,
                                                 reason,
                                                 django_capture_on_commit_callbacks):
    card = PaymentMethodFactory(clinic=other_invoice.clinic, name="Online card",
                                kind="gateway", gateway="sandbox")
    payment_record(invoice=other_invoice, method=card, amount=D("28.70"), actor=outsider,
                   reference="fail_1")
    with django_capture_on_commit_callbacks(execute=True):
        refund = credit_note_create(full=True, invoice=other_invoice, dispute_reason=reason,
                                actor=outsider).refunds.get()

    mutate_refused(client, token, REFUND_RETRY, variables(refund), "refundRetry",
                   f"No refund with id {refund.pk} in your clinics.")
