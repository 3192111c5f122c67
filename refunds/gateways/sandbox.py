"""A gateway for the demo and the tests. The outcome follows the payment's reference:
`fail…` is declined, `pending…` stays pending, `slow…` succeeds after SANDBOX_SLOW_SECONDS
(3 s), anything else succeeds at once. Like a real gateway it keeps its own books
(SandboxGatewayRefund): it counts the calls per idempotency key and refunds once per key."""

import hashlib
import time
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from billing.models import Payment

from ..models import SandboxGatewayRefund
from .base import GatewayRefundResult


class SandboxGateway:
    def refund(
        self, *, payment: Payment, amount: Decimal, currency: str, idempotency_key: str,
        retry: int = 0,
    ) -> GatewayRefundResult:
        # The call is counted as it arrives, before any answer: a caller killed while waiting
        # still shows in the books.
        with transaction.atomic():
            books, _ = SandboxGatewayRefund.objects.get_or_create(
                idempotency_key=idempotency_key, defaults={"amount": amount})
            SandboxGatewayRefund.objects.filter(pk=books.pk).update(calls=F("calls") + 1)
        reference = payment.reference.lower()
        if reference.startswith("fail"):
            return GatewayRefundResult(
                status="failed", failure_reason="The card issuer declined the refund (sandbox)."
            )
        if reference.startswith("pending"):
            return GatewayRefundResult(status="pending")
        if reference.startswith("slow"):
            time.sleep(settings.SANDBOX_SLOW_SECONDS)
        # The same key always gives the same reference and refunds once.
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        with transaction.atomic():
            SandboxGatewayRefund.objects.filter(pk=books.pk, refunds=0).update(
                refunds=1, reference=f"sbx_re_{digest}")
        return GatewayRefundResult(status="succeeded", reference=f"sbx_re_{digest}")
