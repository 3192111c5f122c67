"""Celery tasks of Financial Approval: its notification emails, and the periodic jobs that expire
approved requests and remind about waiting ones (housekeeping.py; beat runs them every few
minutes, and a run may be repeated at any time)."""

import logging

from celery import shared_task

from audit.context import audit_context

from . import housekeeping, notifications

logger = logging.getLogger(__name__)

RETRY_ATTEMPTS = 5


@shared_task(bind=True, name="approvals.notification_send", acks_late=True,
             max_retries=RETRY_ATTEMPTS)
def notification_send(self, notice: str, request_id: int) -> None:
    """Send one notification email (notifications.NOTICES). A mail server that cannot be
    reached is tried again after 1, 2, 4 … minutes; the request itself stands either way."""
    try:
        notifications.NOTICES[notice](request_id=request_id)
    except OSError as error:
        if self.request.is_eager or self.request.retries >= RETRY_ATTEMPTS:
            logger.exception("Could not send the %s email about request %s", notice, request_id)
            return
        raise self.retry(exc=error, countdown=60 * 2 ** self.request.retries) from error


@shared_task(name="approvals.requests_expire", acks_late=True)
def requests_expire() -> int:
    """Every 5 minutes (beat): approved requests past their expiry become expired."""
    with audit_context(client="task:approvals_expire"):
        return housekeeping.requests_expire()


@shared_task(name="approvals.requests_remind", acks_late=True)
def requests_remind() -> tuple[int, int]:
    """Every 5 minutes (beat): remind the approvers of requests waiting too long, and escalate
    those waiting twice as long to the billing administrators."""
    with audit_context(client="task:approvals_remind"):
        return housekeeping.requests_remind()
