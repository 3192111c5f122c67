"""The periodic jobs of Financial Approval (docs/rules.md §5.6): an approved request not carried
out within its clinic's approval_expiry_days expires; a request left waiting longer than its
clinic's approval_reminder_hours reminds the approvers once, and after twice as long goes to the
billing administrators once.

Each request is handled in its own transaction: its row is locked, skipping one somebody else
holds (it is being carried out or decided right now; the next run looks again), and checked
again under the lock before anything changes. So a run never waits on the office, two runs at
once never act twice, and a run may be repeated at any time. `now` is the moment the run
stands at (tests pass it to freeze the clock)."""

import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Action
from audit.services import audit_event_record
from billing.models import Clinic

from . import notifications
from .models import FinancialRequest, RequestStatus


def _lock(pk: int, **still) -> FinancialRequest | None:
    """The request, locked, if it still matches `still`; None when it no longer does or when
    someone else holds its row. Only the request's own row is locked: never its invoice, which
    the office locks first when it carries a request out."""
    locked = (FinancialRequest.objects.select_for_update(skip_locked=True)
              .filter(pk=pk, **still).values_list("pk", flat=True).first())
    if locked is None:
        return None
    return FinancialRequest.objects.select_related("clinic", "invoice").get(pk=pk)


def requests_due_to_expire(*, now: datetime.datetime):
    """Approved requests whose time to be carried out has run out."""
    return FinancialRequest.objects.filter(status=RequestStatus.APPROVED, expires_at__lte=now)


def requests_expire(*, now: datetime.datetime | None = None) -> int:
    """Every approved request past its expires_at becomes expired (one carried out meanwhile is
    left alone). The invoice is then free for a new request. Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    due = requests_due_to_expire(now=now).order_by("expires_at", "pk")
    for pk in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            financial_request = _lock(pk, status=RequestStatus.APPROVED, expires_at__lte=now)
            if financial_request is None:
                continue
            from_state = financial_request.status
            financial_request.expire()
            financial_request.save(update_fields=["status"])
            audit_event_record(
                actor=None, clinic=financial_request.clinic, invoice=financial_request.invoice,
                obj=financial_request, action=Action.REQUEST_EXPIRED, from_state=from_state,
                to_state=financial_request.status,
                data={"days": financial_request.days_to_carry_out,
                      "expires_at": financial_request.expires_at.isoformat()},
            )
        expired += 1
    return expired


def requests_overdue_for_reminder(*, now: datetime.datetime):
    """Waiting requests past their clinic's reminder time and not yet reminded, or past twice
    that and not yet escalated: one query, with a condition per reminder time in use."""
    hours_in_use = sorted(Clinic.objects.order_by()
                          .values_list("approval_reminder_hours", flat=True).distinct())
    if not hours_in_use:
        return FinancialRequest.objects.none()
    overdue = Q()
    for hours in hours_in_use:
        remind_by = now - datetime.timedelta(hours=hours)
        escalate_by = now - datetime.timedelta(hours=2 * hours)
        overdue |= Q(clinic__approval_reminder_hours=hours) & (
            Q(requested_at__lte=remind_by, reminded_at__isnull=True)
            | Q(requested_at__lte=escalate_by, escalated_at__isnull=True))
    # none can be due before the shortest reminder time: a range on (status, requested_at)
    soonest = now - datetime.timedelta(hours=hours_in_use[0])
    return FinancialRequest.objects.filter(overdue, status=RequestStatus.REQUESTED,
                                           requested_at__lte=soonest)


def _waiting_event(financial_request: FinancialRequest, action: Action, *, now, hours: int):
    audit_event_record(
        actor=None, clinic=financial_request.clinic, invoice=financial_request.invoice,
        obj=financial_request, action=action, from_state=financial_request.status,
        to_state=financial_request.status,  # still waiting: the status does not change
        data={"hours": int((now - financial_request.requested_at).total_seconds() // 3600),
              "reminder_hours": hours},
    )


def requests_remind(*, now: datetime.datetime | None = None) -> tuple[int, int]:
    """Each waiting request past its clinic's reminder time emails the clinic's approvers once;
    past twice that, it emails the clinic's billing administrators once. A request past both on
    its first run gets both. Returns (reminded, escalated)."""
    now = now or timezone.now()
    reminded = escalated = 0
    overdue = requests_overdue_for_reminder(now=now).order_by("requested_at", "pk")
    for pk in list(overdue.values_list("pk", flat=True)):
        with transaction.atomic():
            financial_request = _lock(pk, status=RequestStatus.REQUESTED)
            if financial_request is None:
                continue
            hours = financial_request.clinic.approval_reminder_hours
            waited = now - financial_request.requested_at
            changed = []
            if (financial_request.reminded_at is None
                    and waited >= datetime.timedelta(hours=hours)):
                financial_request.reminded_at = now
                changed.append("reminded_at")
                _waiting_event(financial_request, Action.REQUEST_REMINDED, now=now, hours=hours)
                notifications.notify_later("request_waiting", request_id=financial_request.pk)
                reminded += 1
            if (financial_request.escalated_at is None
                    and waited >= datetime.timedelta(hours=2 * hours)):
                financial_request.escalated_at = now
                changed.append("escalated_at")
                _waiting_event(financial_request, Action.REQUEST_ESCALATED, now=now, hours=hours)
                notifications.notify_later("request_escalated", request_id=financial_request.pk)
                escalated += 1
            if changed:
                financial_request.save(update_fields=changed)
    return reminded, escalated
