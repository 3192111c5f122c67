"""Emails about requests: to the clinic's approvers when one is submitted or has waited too long,
to the billing administrators when it has waited twice as long, to the requester when it is
decided. Queued after commit (the notification_send task), so a rolled-back request sends
nothing and a slow mail server never holds a web request."""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.timesince import timesince

from billing.money import format_money
from billing.queueing import queue_after_commit
from billing.roles import BILLING_ADMINISTRATORS

from . import tasks
from .models import FinancialRequest

_muted: contextvars.ContextVar[bool] = contextvars.ContextVar("notifications_muted", default=False)


@contextmanager
def notifications_muted() -> Iterator[None]:
    """Send no email inside this block (loading demo or historical data notifies nobody)."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def approvers_of(clinic, *, exclude=None):
    """Members of the clinic who may decide requests and have an email address."""
    perm = Q(groups__permissions__codename="approve_financialrequest",
             groups__permissions__content_type__app_label="approvals")
    users = (get_user_model().objects.filter(clinics=clinic, is_active=True)
             .filter(perm | Q(is_superuser=True)).exclude(email="").distinct())
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return users


def administrators_of(clinic):
    """Members of the clinic in the Billing administrators group, or superusers, with an email
    address: where a request nobody decides is escalated."""
    users = (get_user_model().objects.filter(clinics=clinic, is_active=True)
             .filter(Q(groups__name=BILLING_ADMINISTRATORS) | Q(is_superuser=True))
             .exclude(email="").distinct())
    return users


def notify_later(notice: str, *, request_id: int) -> None:
    """Queue the email `notice` (a key of NOTICES) about a request once the transaction
    commits; nothing inside notifications_muted()."""
    if _muted.get():
        return
    queue_after_commit(tasks.notification_send, notice, request_id)


def request_link(financial_request: FinancialRequest) -> str:
    """The request's page, as an absolute address under SITE_URL."""
    return settings.SITE_URL + reverse("approvals:request_detail", args=[financial_request.pk])


def _send(subject: str, body: str, recipients: list[str]) -> None:
    """Raises OSError when the mail server cannot be reached (the task tries again later)."""
    if recipients:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)


def notify_request_submitted(*, request_id: int) -> None:
    request = FinancialRequest.objects.select_related(
        "clinic", "invoice__account", "requested_by").get(pk=request_id)
    invoice = request.invoice
    recipients = [u.email for u in approvers_of(request.clinic, exclude=request.requested_by)]
    lines = "".join(
        f"\n  - {line.invoice_line.description}: {format_money(line.amount, invoice.currency)}"
        " without tax" for line in request.lines.select_related("invoice_line"))
    _send(
        f"[{request.clinic.code}] {request.get_kind_display()} for {invoice.number} awaits you",
        f"{request.requested_by.get_full_name() or request.requested_by.get_username()} asks for "
        f"approval: {request.get_kind_display()} #{request.pk}.\n\n"
        f"Invoice: {invoice.number} — {invoice.account.name}\n"
        f"Total: {format_money(invoice.total, invoice.currency)}, balance due "
        f"{format_money(invoice.balance_due, invoice.currency)}\n"
        f"Remarks: {request.remarks}\n"
        + (f"Proposed lines:{lines}\n" if lines else "")
        + f"\nReview it on the Financial Approval screen: {request_link(request)}",
        recipients,
    )


def notify_request_decided(*, request_id: int) -> None:
    request = FinancialRequest.objects.select_related(
        "clinic", "invoice", "requested_by", "decided_by").get(pk=request_id)
    if not request.requested_by.email:
        return
    decision = request.get_status_display().lower()
    next_step = (
        "You can now carry it out from the invoice's More Action menu."
        if request.status == request.Status.APPROVED
        else "The invoice was left as it was."
    )
    if request.status == request.Status.APPROVED and request.expires_at:
        next_step += (f" It expires on {_moment(request.expires_at)} if it is not carried out "
                      "by then.")
    _send(
        f"[{request.clinic.code}] {request.get_kind_display()} for {request.invoice.number} "
        f"{decision}",
        f"{request.get_kind_display()} #{request.pk} for invoice {request.invoice.number} was "
        f"{decision} by {request.decided_by.get_full_name() or request.decided_by.get_username()}"
        f".\n"
        + (f"Remarks: {request.decision_remarks}\n" if request.decision_remarks else "")
        + f"\n{next_step}\n{request_link(request)}",
        [request.requested_by.email],
    )


def notify_second_approval(*, request_id: int) -> None:
    """The first of two approvals is in: the clinic's other approvers are asked for the
    second (neither the requester nor the first approver may give it)."""
    request = FinancialRequest.objects.select_related(
        "clinic", "invoice__account", "requested_by").get(pk=request_id)
    first = request.approvals.select_related("approved_by").first()
    if first is None:
        return
    recipients = [u.email for u in approvers_of(request.clinic, exclude=request.requested_by)
                  .exclude(pk=first.approved_by_id)]
    invoice = request.invoice
    _send(
        f"[{request.clinic.code}] {request.get_kind_display()} for {invoice.number} needs a "
        "second approval",
        f"{first.approved_by.get_full_name() or first.approved_by.get_username()} approved "
        f"{request.get_kind_display()} #{request.pk} ({invoice.number} — {invoice.account.name})"
        f"; the clinic's rules need a second, different approver.\n\n"
        f"Review it on the Financial Approval screen: {request_link(request)}",
        recipients,
    )


def _moment(value) -> str:
    """'14 Dec 2026 09:00 UTC', as the screens show it."""
    return dateformat.format(timezone.localtime(value), "j M Y H:i T")


def _waited(since, until) -> str:
    """'1 day, 2 hours': how long a request has waited, in words."""
    return timesince(since, until, depth=2).replace("\xa0", " ")


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def notify_request_waiting(*, request_id: int) -> None:
    """The reminder: a request has waited longer than the clinic's approval_reminder_hours."""
    request = FinancialRequest.objects.select_related(
        "clinic", "invoice__account", "requested_by").get(pk=request_id)
    invoice = request.invoice
    waited = _waited(request.requested_at, request.reminded_at)
    recipients = [u.email for u in approvers_of(request.clinic, exclude=request.requested_by)]
    _send(
        f"[{request.clinic.code}] Reminder: {request.get_kind_display()} for {invoice.number} "
        f"has waited {waited}",
        f"{request.get_kind_display()} #{request.pk} for invoice {invoice.number} — "
        f"{invoice.account.name} has waited {waited} for a decision, longer than the "
        f"{request.clinic.approval_reminder_hours} hours {request.clinic.name} allows before a "
        f"reminder.\n\n"
        f"Submitted by {_name(request.requested_by)}.\n"
        f"Remarks: {request.remarks}\n\n"
        f"Please decide it on the Financial Approval screen: {request_link(request)}",
        recipients,
    )


def notify_request_escalated(*, request_id: int) -> None:
    """The escalation: a request has waited twice the clinic's approval_reminder_hours."""
    request = FinancialRequest.objects.select_related(
        "clinic", "invoice__account", "requested_by").get(pk=request_id)
    invoice = request.invoice
    waited = _waited(request.requested_at, request.escalated_at)
    recipients = [u.email for u in administrators_of(request.clinic)]
    _send(
        f"[{request.clinic.code}] Escalated: {request.get_kind_display()} for {invoice.number} "
        f"has waited {waited} without a decision",
        f"{request.get_kind_display()} #{request.pk} for invoice {invoice.number} — "
        f"{invoice.account.name} has waited {waited} for a decision, more than twice the "
        f"{request.clinic.approval_reminder_hours} hours {request.clinic.name} allows. Its "
        f"approvers were reminded and nobody has decided it yet.\n\n"
        f"Submitted by {_name(request.requested_by)}.\n"
        f"Remarks: {request.remarks}\n\n"
        f"Please make sure a financial approver of {request.clinic.name} decides it: "
        f"{request_link(request)}",
        recipients,
    )


def notify_request_stale(*, request_id: int) -> None:
    """The invoice changed under a request: its approvers are asked to confirm the new
    breakdown."""
    request = FinancialRequest.objects.select_related(
        "clinic", "invoice__account", "requested_by").get(pk=request_id)
    invoice = request.invoice
    recipients = [u.email for u in approvers_of(request.clinic, exclude=request.requested_by)]
    _send(
        f"[{request.clinic.code}] {request.get_kind_display()} for {invoice.number} needs your "
        "approval again",
        f"{invoice.number} — {invoice.account.name} changed after {request.get_kind_display()} "
        f"#{request.pk} was submitted or approved, so the credit note it would produce is no "
        f"longer the one approved. It is now "
        f"{format_money(request.frozen_total, invoice.currency)}"
        f" and waits for its approvers to confirm the new breakdown before it can be carried "
        f"out.\n\nReview it on the Financial Approval screen: {request_link(request)}",
        recipients,
    )


NOTICES = {
    "request_stale": notify_request_stale,
    "request_submitted": notify_request_submitted,
    "request_decided": notify_request_decided,
    "request_second_approval": notify_second_approval,
    "request_waiting": notify_request_waiting,
    "request_escalated": notify_request_escalated,
}
