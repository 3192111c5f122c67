"""Celery tasks of the refund engine. Each re-reads its rows and does nothing when the state has
moved on, so a task delivered twice (acks_late: a worker killed mid-call) is harmless."""

import logging

from celery import shared_task

from audit.context import audit_context

from . import services
from .gateways import GatewayUnavailable

logger = logging.getLogger(__name__)

# Seconds before each new attempt when the gateway gave no answer: 10 s, 20 s, 40 s … at most
# 10 minutes; after the last, refunds_reconcile keeps sending it every few minutes.
RETRY_FIRST_SECONDS = 10
RETRY_MOST_SECONDS = 600
RETRY_ATTEMPTS = 8


def retry_delay(retries: int) -> int:
    return min(RETRY_FIRST_SECONDS * 2 ** retries, RETRY_MOST_SECONDS)


@shared_task(bind=True, name="refunds.refund_send", acks_late=True, max_retries=RETRY_ATTEMPTS)
def refund_send(self, refund_id: int) -> str:
    """Send a pending gateway refund, with its idempotency key, and record the answer. A
    timeout or a gateway error (5xx) is tried again later; a decline is final (staff may retry
    it from the invoice page)."""
    try:
        return services.refund_send(refund_id=refund_id).status
    except GatewayUnavailable as error:
        if self.request.is_eager:
            # No broker: as before queues, the refund stays pending for refunds_reconcile.
            logger.warning("Refund %s stays pending: %s", refund_id, error)
            return "pending"
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries)) from error


@shared_task(name="refunds.reconcile", acks_late=True)
def refunds_reconcile() -> dict[str, int]:
    """Every minute (beat): send again the gateway refunds pending beyond the grace period."""
    with audit_context(client="task:refunds_reconcile"):
        return services.refunds_reconcile()
