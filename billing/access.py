"""Who may do what, checked by the services so the screens and the API get the same answer."""

from .exceptions import BusinessRuleError
from .models import Clinic
from .selectors import is_member

NOT_A_MEMBER = "You are not a member of {clinic}, so you cannot work on its invoices."
NO_PERMISSION = "You do not have permission to {action}. Ask a billing administrator for access."


def ensure_member(*, actor, clinic: Clinic) -> None:
    if not is_member(user=actor, clinic=clinic):
        raise BusinessRuleError(NOT_A_MEMBER.format(clinic=clinic.name))


def ensure_permission(*, actor, permission: str, action: str) -> None:
    """Refuse unless the actor holds the permission (membership checked already)."""
    if not actor.has_perm(permission):
        raise BusinessRuleError(NO_PERMISSION.format(action=action))


def ensure_can(*, actor, clinic: Clinic, permission: str, action: str) -> None:
    """Refuse unless the actor belongs to the clinic and holds the permission."""
    ensure_member(actor=actor, clinic=clinic)
    ensure_permission(actor=actor, permission=permission, action=action)
