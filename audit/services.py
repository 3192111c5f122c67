from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from . import context
from .models import Action, AuditEvent


def audit_event_record(
    *,
    actor,
    clinic,
    obj: models.Model,
    action: Action,
    invoice=None,
    from_state: str = "",
    to_state: str = "",
    amount: Decimal | None = None,
    currency: str = "",
    remarks: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event; call it inside the transaction that makes the change it records.
    `action` is one of `Action`: an unknown one raises ValueError before anything is written."""
    action = Action(action)
    ctx = context.current()
    user = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=user,
        actor_username=user.get_username() if user else "",
        clinic=clinic,
        invoice=invoice,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=True),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action=action,
        from_state=from_state or "",
        to_state=to_state or "",
        amount=amount,
        currency=currency or (clinic.currency if clinic is not None and amount is not None else ""),
        remarks=remarks or "",
        request_id=ctx.request_id,
        client=ctx.client,
        data=data or {},
    )
