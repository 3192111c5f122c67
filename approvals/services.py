"""Invoice Refund and Cancellation Requests: submitted by billing staff, decided by a financial
approver who is not the requester. Each step locks the request, checks its rules, moves the
state machine and writes its audit event in one transaction; emails go out after commit."""

from collections.abc import Sequence
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import audit_event_record
from billing.access import ensure_can, ensure_member
from billing.breakdown import breakdown_compute
from billing.exceptions import BusinessRuleError
from billing.models import Invoice, InvoiceStatus, Policy
from billing.money import ZERO, format_money
from billing.services import invoice_lock
from billing.text import bounded_remarks

from .models import (
    FinancialRequest,
    FinancialRequestLine,
    RequestKind,
    RequestStatus,
)
from .notifications import notify_request_decided, notify_request_submitted

REMARKS_REQUIRED = "Add remarks that explain the request."
DIRECT_POLICY = "{clinic} {what} directly: no request is needed."
ALREADY_OPEN = (
    "{invoice} already has an open {kind} (#{pk}, {status}, by {requester}). "
    "Wait for its decision, or withdraw it first."
)
NOTHING_TO_REFUND = "{invoice} has nothing left to refund or credit."
NOT_REFUNDABLE = "{invoice} is {status}: it cannot be refunded or credited."
NOT_CANCELLABLE_DRAFT = "A draft has no number and is not cancelled: discard it instead."
NOT_CANCELLABLE = "{invoice} is {status}: it cannot be cancelled."
CANCEL_PAID_FIRST = (
    "{amount} paid on {invoice} has not been refunded. Refund it first, then request the "
    "cancellation."
)
OWN_REQUEST = "You submitted this request, so someone else must decide it."
ALREADY_DECIDED = "This request was already decided by {who}: it is {status}."
NOT_OPEN = "This request is {status}: it can no longer be decided."
REJECT_REMARKS = "Say why the request is rejected."
WITHDRAW_NOT_REQUESTER = "Only {who}, who submitted this request, can withdraw it."
WITHDRAW_NOT_WAITING = (
    "Only a request waiting for a decision can be withdrawn; this one is {status}."
)


def _clean_remarks(remarks: str | None, *, required_message: str = REMARKS_REQUIRED) -> str:
    remarks = bounded_remarks(remarks)
    if not remarks:
        raise BusinessRuleError(required_message)
    return remarks


def _ensure_approval_policy(invoice: Invoice, kind: str) -> None:
    clinic = invoice.clinic
    if kind == RequestKind.REFUND and clinic.refund_policy == Policy.DIRECT:
        raise BusinessRuleError(DIRECT_POLICY.format(clinic=clinic.name,
                                                     what="refunds and credits invoices"))
    if kind == RequestKind.CANCELLATION and clinic.cancellation_policy == Policy.DIRECT:
        raise BusinessRuleError(DIRECT_POLICY.format(clinic=clinic.name,
                                                     what="cancels invoices"))


def _ensure_none_open(invoice: Invoice, kind: str) -> None:
    existing = (FinancialRequest.objects.filter(invoice=invoice, kind=kind,
                                                status__in=[RequestStatus.REQUESTED,
                                                            RequestStatus.APPROVED])
                .select_related("requested_by").first())
    if existing:
        raise BusinessRuleError(ALREADY_OPEN.format(
            invoice=invoice, kind=existing.get_kind_display(), pk=existing.pk,
            status=existing.get_status_display().lower(),
            requester=existing.requested_by.get_username()))


def _create(*, invoice: Invoice, kind: str, remarks: str, actor,
            lines: Sequence[tuple[object, object]] = ()) -> FinancialRequest:
    try:
        with transaction.atomic():  # a savepoint: a lost race on the unique index is refused
            request = FinancialRequest.objects.create(
                clinic=invoice.clinic, invoice=invoice, kind=kind, remarks=remarks,
                requested_by=actor,
            )
    except IntegrityError:
        _ensure_none_open(invoice, kind)
        raise
    FinancialRequestLine.objects.bulk_create([
        FinancialRequestLine(request=request, invoice_line=line, amount=amount)
        for line, amount in lines
    ])
    audit_event_record(
        actor=actor, clinic=invoice.clinic, invoice=invoice, obj=request,
        action=Action.REQUEST_SUBMITTED, to_state=request.status, remarks=remarks,
        amount=sum((amount for _, amount in lines), ZERO) if lines else None,
        data={"kind": kind, "lines": [{"line": line.pk, "net": str(amount)}
                                      for line, amount in lines]},
    )
    transaction.on_commit(partial(notify_request_submitted, request_id=request.pk))
    return request


def refund_request_create(
    *,
    invoice: Invoice,
    remarks: str,
    actor,
    lines: Sequence[tuple] | None = None,
) -> FinancialRequest:
    """Ask for approval to refund or credit an invoice. With `lines` ((line, amount without tax
    or None for all that remains)), the approver approves exactly those amounts."""
    remarks = _clean_remarks(remarks)
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        ensure_can(actor=actor, clinic=invoice.clinic,
                   permission="approvals.add_financialrequest", action="submit requests")
        _ensure_approval_policy(invoice, RequestKind.REFUND)
        if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED):
            raise BusinessRuleError(NOT_REFUNDABLE.format(
                invoice=invoice, status=invoice.get_status_display().lower()))
        if invoice.amount_credited >= invoice.total:
            raise BusinessRuleError(NOTHING_TO_REFUND.format(invoice=invoice))
        proposed = []
        if lines:
            # the same rules as the refund itself, so nothing unexecutable is approved
            breakdown = breakdown_compute(
                invoice=invoice, invoice_lines=invoice.lines.all(),
                payments=invoice.payments.select_related("method"), requested=list(lines))
            proposed = [(part.invoice_line, part.net) for part in breakdown.lines]
        _ensure_none_open(invoice, RequestKind.REFUND)
        return _create(invoice=invoice, kind=RequestKind.REFUND, remarks=remarks, actor=actor,
                       lines=proposed)


def cancellation_request_create(*, invoice: Invoice, remarks: str, actor) -> FinancialRequest:
    """Ask for approval to cancel an issued invoice."""
    remarks = _clean_remarks(remarks)
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        ensure_can(actor=actor, clinic=invoice.clinic,
                   permission="approvals.add_financialrequest", action="submit requests")
        _ensure_approval_policy(invoice, RequestKind.CANCELLATION)
        if invoice.status == InvoiceStatus.DRAFT:
            raise BusinessRuleError(NOT_CANCELLABLE_DRAFT)
        if invoice.net_paid > 0:
            raise BusinessRuleError(CANCEL_PAID_FIRST.format(
                amount=format_money(invoice.net_paid, invoice.currency), invoice=invoice))
        if invoice.status != InvoiceStatus.ISSUED or invoice.balance_due <= 0:
            raise BusinessRuleError(NOT_CANCELLABLE.format(
                invoice=invoice, status=invoice.get_status_display().lower()))
        _ensure_none_open(invoice, RequestKind.CANCELLATION)
        return _create(invoice=invoice, kind=RequestKind.CANCELLATION, remarks=remarks,
                       actor=actor)


def _lock_request(request: FinancialRequest) -> FinancialRequest:
    # Lock the bare row, then read its relations: a transaction that waited for the lock sees
    # the row as the winner left it, but rows joined in the same query as they were before.
    FinancialRequest.objects.select_for_update().values_list("pk", flat=True).get(pk=request.pk)
    return (FinancialRequest.objects
            .select_related("clinic", "invoice", "decided_by", "requested_by")
            .get(pk=request.pk))


def _ensure_undecided(request: FinancialRequest) -> None:
    if request.status == RequestStatus.REQUESTED:
        return
    if request.decided_by_id:
        raise BusinessRuleError(ALREADY_DECIDED.format(
            who=request.decided_by.get_username(), status=request.get_status_display().lower()))
    raise BusinessRuleError(NOT_OPEN.format(status=request.get_status_display().lower()))


def _decide(*, request: FinancialRequest, actor, remarks: str, approve: bool) -> FinancialRequest:
    with transaction.atomic():
        request = _lock_request(request)
        ensure_can(actor=actor, clinic=request.clinic,
                   permission="approvals.approve_financialrequest",
                   action="approve or reject financial requests")
        if request.requested_by_id == actor.pk:
            raise BusinessRuleError(OWN_REQUEST)
        _ensure_undecided(request)
        from_state = request.status
        if approve:
            request.approve()
        else:
            request.reject()
        request.decided_by = actor
        request.decided_at = timezone.now()
        request.decision_remarks = remarks
        request.save()
        audit_event_record(
            actor=actor, clinic=request.clinic, invoice=request.invoice, obj=request,
            action=Action.REQUEST_APPROVED if approve else Action.REQUEST_REJECTED,
            from_state=from_state, to_state=request.status, remarks=remarks,
        )
        transaction.on_commit(partial(notify_request_decided, request_id=request.pk))
    return request


def request_approve(*, request: FinancialRequest, actor, remarks: str = "") -> FinancialRequest:
    """Approve a request: a financial approver of its clinic, never its requester."""
    return _decide(request=request, actor=actor, remarks=bounded_remarks(remarks), approve=True)


def request_reject(*, request: FinancialRequest, actor, remarks: str) -> FinancialRequest:
    """Reject a request, saying why. The invoice is left as it was."""
    remarks = _clean_remarks(remarks, required_message=REJECT_REMARKS)
    return _decide(request=request, actor=actor, remarks=remarks, approve=False)


def request_withdraw(*, request: FinancialRequest, actor) -> FinancialRequest:
    """The requester takes back a request still waiting for a decision."""
    with transaction.atomic():
        request = _lock_request(request)
        ensure_member(actor=actor, clinic=request.clinic)
        if request.requested_by_id != actor.pk:
            raise BusinessRuleError(WITHDRAW_NOT_REQUESTER.format(
                who=request.requested_by.get_username()))
        if request.status != RequestStatus.REQUESTED:
            raise BusinessRuleError(WITHDRAW_NOT_WAITING.format(
                status=request.get_status_display().lower()))
        from_state = request.status
        request.withdraw()
        request.save()
        audit_event_record(
            actor=actor, clinic=request.clinic, invoice=request.invoice, obj=request,
            action=Action.REQUEST_WITHDRAWN, from_state=from_state, to_state=request.status,
        )
    return request
