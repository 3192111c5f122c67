"""Invoice Refund and Cancellation Requests: submitted by billing staff, decided by a financial
approver who is not the requester. Each step locks the request, checks its rules, moves the
state machine and writes its audit event in one transaction; emails go out after commit."""

import datetime
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import audit_event_record
from billing.access import ensure_member
from billing.breakdown import CreditLineInput, LinePart, breakdown_compute
from billing.exceptions import BusinessRuleError
from billing.models import Invoice
from billing.money import ZERO
from billing.services import invoice_lock
from billing.text import bounded_remarks

from .models import (
    FinancialRequest,
    FinancialRequestLine,
    RequestKind,
)
from .notifications import notify_later
from .rules import decision_refusal, request_refusal, withdraw_refusal

REMARKS_REQUIRED = "Add remarks that explain the request."
REJECT_REMARKS = "Say why the request is rejected."


def _clean_remarks(remarks: str | None, *, required_message: str = REMARKS_REQUIRED) -> str:
    remarks = bounded_remarks(remarks)
    if not remarks:
        raise BusinessRuleError(required_message)
    return remarks


def _ensure_may_submit(invoice: Invoice, kind: str, actor) -> None:
    ensure_member(actor=actor, clinic=invoice.clinic)
    if refusal := request_refusal(invoice, kind, actor):
        raise BusinessRuleError(refusal)


def _create(*, invoice: Invoice, kind: str, remarks: str, actor,
            lines: Sequence[LinePart] = ()) -> FinancialRequest:
    try:
        with transaction.atomic():  # a savepoint: a lost race on the unique index is refused
            financial_request = FinancialRequest.objects.create(
                clinic=invoice.clinic, invoice=invoice, kind=kind, remarks=remarks,
                requested_by=actor,
            )
    except IntegrityError:
        _ensure_may_submit(invoice, kind, actor)  # says which request won
        raise
    FinancialRequestLine.objects.bulk_create([
        FinancialRequestLine(request=financial_request, invoice_line=part.invoice_line,
                             amount=part.net)
        for part in lines
    ])
    audit_event_record(
        actor=actor, clinic=invoice.clinic, invoice=invoice, obj=financial_request,
        action=Action.REQUEST_SUBMITTED, to_state=financial_request.status, remarks=remarks,
        amount=sum((part.net for part in lines), ZERO) if lines else None,
        data={"kind": kind, "lines": [{"line": part.invoice_line.pk, "net": str(part.net)}
                                      for part in lines]},
    )
    notify_later("request_submitted", request_id=financial_request.pk)
    return financial_request


def refund_request_create(
    *,
    invoice: Invoice,
    remarks: str,
    actor,
    lines: Sequence[CreditLineInput] | None = None,
) -> FinancialRequest:
    """Ask for approval to refund or credit an invoice. With `lines` (amounts without tax, None
    for all that remains on a line), the approver approves exactly those amounts."""
    remarks = _clean_remarks(remarks)
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        _ensure_may_submit(invoice, RequestKind.REFUND, actor)
        proposed = []
        if lines:
            # the same rules as the refund itself, so nothing unexecutable is approved
            breakdown = breakdown_compute(
                invoice=invoice, invoice_lines=invoice.lines.all(),
                payments=invoice.payments.select_related("method"), requested=list(lines))
            proposed = breakdown.lines
        return _create(invoice=invoice, kind=RequestKind.REFUND, remarks=remarks, actor=actor,
                       lines=proposed)


def cancellation_request_create(*, invoice: Invoice, remarks: str, actor) -> FinancialRequest:
    """Ask for approval to cancel an issued invoice."""
    remarks = _clean_remarks(remarks)
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        _ensure_may_submit(invoice, RequestKind.CANCELLATION, actor)
        return _create(invoice=invoice, kind=RequestKind.CANCELLATION, remarks=remarks,
                       actor=actor)


def _lock_request(financial_request: FinancialRequest) -> FinancialRequest:
    # Lock the bare row, then read its relations: a transaction that waited for the lock sees
    # the row as the winner left it, but rows joined in the same query as they were before.
    FinancialRequest.objects.select_for_update().values_list("pk", flat=True).get(
        pk=financial_request.pk)
    return (FinancialRequest.objects
            .select_related("clinic", "invoice", "decided_by", "requested_by")
            .get(pk=financial_request.pk))


def _decide(*, financial_request: FinancialRequest, actor, remarks: str,
            approve: bool) -> FinancialRequest:
    with transaction.atomic():
        financial_request = _lock_request(financial_request)
        ensure_member(actor=actor, clinic=financial_request.clinic)
        if refusal := decision_refusal(financial_request, actor):
            raise BusinessRuleError(refusal)
        from_state = financial_request.status
        if approve:
            financial_request.approve()
        else:
            financial_request.reject()
        financial_request.decided_by = actor
        financial_request.decided_at = timezone.now()
        financial_request.decision_remarks = remarks
        if approve:  # not carried out within the clinic's days, it expires (housekeeping.py)
            financial_request.expires_at = financial_request.decided_at + datetime.timedelta(
                days=financial_request.clinic.approval_expiry_days)
        financial_request.save()
        audit_event_record(
            actor=actor, clinic=financial_request.clinic, invoice=financial_request.invoice,
            obj=financial_request,
            action=Action.REQUEST_APPROVED if approve else Action.REQUEST_REJECTED,
            from_state=from_state, to_state=financial_request.status, remarks=remarks,
        )
        notify_later("request_decided", request_id=financial_request.pk)
    return financial_request


def request_approve(*, financial_request: FinancialRequest, actor,
                    remarks: str = "") -> FinancialRequest:
    """Approve a request: a financial approver of its clinic, never its requester."""
    return _decide(financial_request=financial_request, actor=actor,
                   remarks=bounded_remarks(remarks), approve=True)


def request_reject(*, financial_request: FinancialRequest, actor,
                   remarks: str) -> FinancialRequest:
    """Reject a request, saying why. The invoice is left as it was."""
    remarks = _clean_remarks(remarks, required_message=REJECT_REMARKS)
    return _decide(financial_request=financial_request, actor=actor, remarks=remarks,
                   approve=False)


def request_withdraw(*, financial_request: FinancialRequest, actor) -> FinancialRequest:
    """The requester takes back a request still waiting for a decision."""
    with transaction.atomic():
        financial_request = _lock_request(financial_request)
        ensure_member(actor=actor, clinic=financial_request.clinic)
        if refusal := withdraw_refusal(financial_request, actor):
            raise BusinessRuleError(refusal)
        from_state = financial_request.status
        financial_request.withdraw()
        financial_request.save()
        audit_event_record(
            actor=actor, clinic=financial_request.clinic, invoice=financial_request.invoice,
            obj=financial_request, action=Action.REQUEST_WITHDRAWN, from_state=from_state,
            to_state=financial_request.status,
        )
    return financial_request
