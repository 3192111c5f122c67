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
        self, *, payment: Payment, amount: Decimal, currency: str, idempotency_key: str,
        retry: int = 0,
    ) -> GatewayRefundResult:
        """Refund `amount` of `payment`. Calling again with the same key and `retry` must not
        refund twice. `retry` counts the times staff sent the refund again after the gateway
        declined it: a gateway that remembers its answers per key (Stripe does, for 24 hours)
        needs it to make a new attempt rather than repeat the refusal."""
        ...
