"""Who is acting and from where: set once per request or command, read when an event is written."""

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class AuditContext:
    request_id: str = ""
    client: str = ""


_current: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "audit_context", default=None
)


def current() -> AuditContext:
    return _current.get() or AuditContext()


@contextmanager
def audit_context(*, client: str, request_id: str | None = None) -> Iterator[AuditContext]:
    ctx = AuditContext(request_id=request_id or uuid.uuid4().hex, client=client)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
