"""Queueing a Celery task once the transaction commits, so a rolled-back change queues nothing.
When the broker cannot be reached the change still stands and the request still succeeds: the
task is logged as not queued, and the periodic job that covers it (refunds_reconcile for gateway
refunds) picks the work up later."""

import logging
from functools import partial

from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def _queue(task, args: tuple) -> None:
    try:
        task.delay(*args)
    except OperationalError:
        logger.exception("Could not queue %s%s: the task broker cannot be reached", task.name,
                         args)


def queue_after_commit(task, *args) -> None:
    transaction.on_commit(partial(_queue, task, args))
