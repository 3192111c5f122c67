from django import template

register = template.Library()


@register.filter
def person(user, fallback: str = "") -> str:
    """How the billing office names a colleague: their full name, else their username."""
    if user is None:
        return fallback
    return user.get_full_name() or user.get_username()
