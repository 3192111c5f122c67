"""Idempotency-Key: a retry with the same key and body returns the first response and changes
nothing; the same key with another body is refused (422). Concurrent retries wait for the first
to finish, then get its response. Only outcomes are kept: a request that met a fault on our side
(HTTP 5xx) keeps nothing, so its retry runs afresh."""

import datetime
import hashlib
import json
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from billing.faults import TEMPORARY_PROBLEM, UNEXPECTED_PROBLEM

from .models import IdempotencyKey

FAULT_MESSAGES = {503: TEMPORARY_PROBLEM, 500: UNEXPECTED_PROBLEM}

KEY_TOO_LONG = "An Idempotency-Key has at most 255 characters."
KEY_REUSED = (
    "This Idempotency-Key was already used with a different request. Use a new key for a new "
    "request."
)


def _fingerprint(body: bytes) -> str:
    """The same JSON, however it is spaced or ordered, has the same fingerprint."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True,
                               separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def idempotent(*, request: HttpRequest, key: str, client: str,
               run: Callable[[], HttpResponse]) -> HttpResponse:
    if len(key) > 255:
        return JsonResponse({"errors": [{"message": KEY_TOO_LONG}]}, status=400)
    fingerprint = _fingerprint(request.body)
    with transaction.atomic():
        # The key is claimed in the request's own transaction (one commit, not two) and held
        # until it ends: a concurrent retry's insert waits for it, then finds its response.
        IdempotencyKey.objects.bulk_create(
            [IdempotencyKey(client=client, key=key, request_hash=fingerprint)],
            ignore_conflicts=True)
        record = IdempotencyKey.objects.select_for_update().get(client=client, key=key)
        if record.request_hash != fingerprint:
            return JsonResponse({"errors": [{"message": KEY_REUSED}]}, status=422)
        if record.status_code is not None:
            replay = HttpResponse(record.response_body, status=record.status_code,
                                  content_type="application/json")
            replay["Idempotent-Replayed"] = "true"
            return replay
        response = run()
        if response.status_code >= 500:
            # A fault on our side is not an outcome: nothing of this request is kept, the key's
            # claim included, so the client's retry with the same key carries it out once.
            transaction.set_rollback(True)
            message = FAULT_MESSAGES.get(response.status_code, UNEXPECTED_PROBLEM)
            replacement = JsonResponse({"errors": [{"message": message}]},
                                       status=response.status_code)
            if response.has_header("Retry-After"):
                replacement["Retry-After"] = response["Retry-After"]
            return replacement
        record.status_code = response.status_code
        record.response_body = response.content.decode()
        record.save(update_fields=["status_code", "response_body"])
        return response


def idempotency_keys_purge() -> int:
    """Forget the keys older than IDEMPOTENCY_KEY_TTL_HOURS; the number forgotten."""
    cutoff = timezone.now() - datetime.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
