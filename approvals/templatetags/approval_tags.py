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
    """The status; a request that needs two approvals says how many it has while it waits."""
    label = financial_request.get_status_display()
    if (financial_request.status == "requested" and financial_request.approvals_needed > 1):
        given = sum(1 for approval in financial_request.approvals.all()
                    if approval.round == financial_request.approval_round)
        label = f"{label} · {given} of {financial_request.approvals_needed} approvals"
    return {"label": label, "colour": STATUS_BADGES.get(financial_request.status)}


@register.filter
def age(value):
    """{{ request.requested_at|age }} → '3 days' (the largest unit only), 'just now' under a
    minute."""
    if not value:
        return ""
    if timezone.now() - value < datetime.timedelta(minutes=1):
        return "just now"
    return timesince(value, depth=1)
