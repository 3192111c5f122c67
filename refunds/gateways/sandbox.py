"""A gateway for the demo and the tests. The outcome follows the payment's reference:
`fail…` is declined, `pending…` stays pending, anything else succeeds."""

import hashlib
from decimal import Decimal

from billing.models import Payment

from .base import GatewayRefundResult


class SandboxGateway:
    def refund(
        self, *, payment: Payment, amount: Decimal, currency: str, idempotency_key: str,
        retry: int = 0,
    ) -> GatewayRefundResult:
        reference = payment.reference.lower()
        if reference.startswith("fail"):
            return GatewayRefundResult(
                status="failed", failure_reason="The card issuer declined the refund (sandbox)."
            )
        if reference.startswith("pending"):
            return GatewayRefundResult(status="pending")
        # The same key always gives the same reference, as a real gateway's idempotency would.
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        return GatewayRefundResult(status="succeeded", reference=f"sbx_re_{digest}")
