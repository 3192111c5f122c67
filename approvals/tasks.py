"""Celery tasks of Financial Approval: its notification emails."""

import logging

from celery import shared_task

from . import notifications

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
