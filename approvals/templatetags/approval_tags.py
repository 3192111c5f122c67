import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()

STATUS_BADGES = {
    "requested": "warning",
    "approved": "success",
    "rejected": "danger",
    "withdrawn": "secondary",
    "completed": "dark",
    "expired": "secondary",
}


@register.inclusion_tag("billing/_status_badge.html")
def request_status_badge(financial_request):
    return {"label": financial_request.get_status_display(),
            "colour": STATUS_BADGES.get(financial_request.status)}


@register.filter
def age(value):
    """{{ request.requested_at|age }} → '3 days' (the largest unit only), 'just now' under a
    minute."""
    if not value:
        return ""
    if timezone.now() - value < datetime.timedelta(minutes=1):
        return "just now"
    return timesince(value, depth=1)
