"""Celery tasks of the API."""

from celery import shared_task

from .idempotency import idempotency_keys_purge as purge


@shared_task(name="api.idempotency_keys_purge")
def idempotency_keys_purge() -> int:
    """Daily (beat): forget Idempotency-Keys older than IDEMPOTENCY_KEY_TTL_HOURS."""
    return purge()
