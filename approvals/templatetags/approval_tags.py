import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from approvals.selectors import (
    WAITING_LONG_OVERDUE,
    WAITING_OVERDUE,
    frozen_breakdown_rows,
    waiting_overdue,
)

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


@register.filter
def frozen(financial_request):
    """{% with breakdown=item|frozen %}: the request's frozen breakdown, or None (an old request
    that froze none)."""
    return frozen_breakdown_rows(financial_request)


# (Bootstrap text class, the word said with it, what the title explains) for a waiting request
# past its clinic's reminder time, and past twice that
WAITING_LOOKS = {
    WAITING_OVERDUE: ("text-warning-emphasis fw-semibold", "overdue",
                      "Waiting longer than {clinic}'s reminder time ({hours} hours): its "
                      "approvers are reminded."),
    WAITING_LONG_OVERDUE: ("text-danger-emphasis fw-bold", "long overdue",
                           "Waiting more than twice {clinic}'s reminder time ({hours} hours): it "
                           "goes to the billing administrators too."),
}


@register.inclusion_tag("approvals/_request_age.html")
def request_age(financial_request):
    """A request's age, coloured and worded against its clinic's reminder time while it waits
    for a decision: plain within it, "overdue" past it, "long overdue" past twice it."""
    level = waiting_overdue(financial_request, now=timezone.now())
    colour, word, title = WAITING_LOOKS.get(level, ("", "", ""))
    clinic = financial_request.clinic
    return {
        "requested_at": financial_request.requested_at,
        "colour": colour,
        "word": word,
        "title": title.format(clinic=clinic.name, hours=clinic.approval_reminder_hours),
    }
