import strawberry
from strawberry import Info

from refunds.services import refund_mark_paid_out as mark_paid_out_service

from ..lookups import refund_for, user_of
from ..payloads import RefundPayload, refund_payload


def refund_mark_paid_out(info: Info, refund_id: strawberry.ID, remarks: str = "") -> RefundPayload:
    """Record that a manual refund was paid back outside the system."""
    return refund_payload(lambda: mark_paid_out_service(
        refund=refund_for(info, refund_id), remarks=remarks, actor=user_of(info)))
