"""Faults on our side (the database dropped a connection, a statement was cancelled, a bug) reach
people and integrations as one plain sentence, never the driver's or Python's text, which is
logged in full with the request id instead. Nothing is half done: every service runs in one
transaction, so a request that failed this way changed nothing."""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger("billing.faults")

TEMPORARY_PROBLEM = (
    "A temporary problem stopped this request and nothing was changed. Please try again in a "
    "moment."
)
UNEXPECTED_PROBLEM = (
    "Something went wrong on our side and nothing was changed. The problem has been recorded; "
    "if it happens again, tell your administrator."
)


def is_transient(error: BaseException) -> bool:
    """A fault a retry can get past: a lost connection or a cancelled or timed-out statement
    (deadlocks and serialization failures are OperationalErrors too)."""
    return isinstance(error, OperationalError | InterfaceError)


def fault_message(error: BaseException) -> str:
    return TEMPORARY_PROBLEM if is_transient(error) else UNEXPECTED_PROBLEM


def fault_status(error: BaseException) -> int:
    return 503 if is_transient(error) else 500


def log_fault(error: BaseException, *, request_id: str | None) -> None:
    logger.error("Request %s failed: %s", request_id or "-", type(error).__name__,
                 exc_info=(type(error), error, error.__traceback__))


class DatabaseFaultMiddleware:
    """A database fault on a screen: a plain page (503 for a retryable one), the details in the
    log. The page is rendered without context processors: they would query the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DatabaseError):
            return None
        log_fault(exception, request_id=getattr(request, "request_id", None))
        status = fault_status(exception)
        html = render_to_string("fault.html", {
            "message": fault_message(exception), "status": status,
            "request_id": getattr(request, "request_id", ""),
        })
        response = HttpResponse(html, status=status)
        if status == 503:
            response["Retry-After"] = "5"
        return response
