from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from billing.models import Payment


@dataclass(frozen=True)
class GatewayRefundResult:
    status: Literal["succeeded", "failed", "pending"]
    reference: str = ""
    failure_reason: str = ""


class GatewayUnavailable(Exception):
    """The gateway could not be reached or gave no answer: the refund stays pending and is sent
    again (with the same idempotency key) by reconcile_refunds."""


class GatewayAdapter(Protocol):
    def refund(
        self, *, payment: Payment, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayRefundResult:
        """Refund `amount` of `payment`. Calling again with the same key must not refund twice."""
        ...
