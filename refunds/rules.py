"""Whether a refund can be retried or marked paid out, each rule stated once: a predicate returns
the plain message of its refusal, or None when the action is allowed. The services raise on
them; the invoice page offers a button only where they allow it."""

from billing.access import NO_PERMISSION

from .models import Refund, RefundStatus

REFUND_PERMISSION = "billing.refund_invoice"

RETRY_NOT_FAILED = "Only a failed gateway refund can be retried; this one is {status}."
PAYOUT_NOT_AWAITING = "Only a refund awaiting payout can be marked paid out; this one is {status}."


def _refusal(refund: Refund, user, *, status: str, message: str) -> str | None:
    if not user.has_perm(REFUND_PERMISSION):
        return NO_PERMISSION.format(action="refund invoices")
    if refund.status != status:
        return message.format(status=refund.get_status_display().lower())
    return None


def retry_refusal(refund: Refund, user) -> str | None:
    """A gateway refund the gateway declined can be sent again, by staff who may refund."""
    return _refusal(refund, user, status=RefundStatus.FAILED, message=RETRY_NOT_FAILED)


def payout_refusal(refund: Refund, user) -> str | None:
    """A manual refund (cash, transfer…) is marked paid out once staff have paid it back."""
    return _refusal(refund, user, status=RefundStatus.AWAITING_PAYOUT,
                    message=PAYOUT_NOT_AWAITING)
