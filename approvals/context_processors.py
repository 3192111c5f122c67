from django.utils.functional import SimpleLazyObject

from .selectors import requests_awaiting


def awaiting_count(request):
    """`approvals_awaiting` for the nav badge: how many requests wait for this user's decision.
    Counted (one query) only when a template uses it; nothing for anonymous visitors."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"approvals_awaiting": SimpleLazyObject(
        lambda: requests_awaiting(user=user).count())}
