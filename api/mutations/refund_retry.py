import strawberry
from strawberry import Info

from refunds.services import refund_retry as refund_retry_service

from ..lookups import refund_for, user_of
from ..payloads import RefundPayload, refund_payload


def refund_retry(info: Info, refund_id: strawberry.ID) -> RefundPayload:
    """Send a declined gateway refund again (same idempotency key)."""
    return refund_payload(lambda: refund_retry_service(
        refund=refund_for(info, refund_id), actor=user_of(info)))
