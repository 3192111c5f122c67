"""Invoice Refund and Cancellation Requests: submitted by billing staff, decided by a financial
approver who is not the requester. Each step locks the request, checks its rules, moves the
state machine and writes its audit event in one transaction; emails go out after commit."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import audit_event_record
from billing.access import ensure_member
from billing.breakdown import CreditLineInput, LinePart, breakdown_compute
from billing.exceptions import BusinessRuleError
from billing.models import Clinic, DisputeReason, Invoice, Policy
from billing.money import ZERO, format_money
from billing.services import invoice_lock
from billing.text import bounded_remarks

from .models import (
    OPEN_STATUSES,
    ApprovalRule,
    Approvers,
    FinancialRequest,
    FinancialRequestLine,
    RequestApproval,
    RequestKind,
    RequestStatus,
)
from .notifications import notify_later
from .rules import (
    approval_rule_for,
    approvers_needed,
    decision_refusal,
    request_refusal,
    withdraw_refusal,
)

REMARKS_REQUIRED = "Add remarks that explain the request."
REJECT_REMARKS = "Say why the request is rejected."
NO_APPROVAL_NEEDED = (
    "A {what} of {amount} at {clinic} needs no approval (its rule: {rule}): carry it out "
    "directly from the invoice's More Action menu."
)
REASON_INACTIVE = "The dispute reason “{reason}” is no longer in use: choose another."


def _clean_remarks(remarks: str | None, *, required_message: str = REMARKS_REQUIRED) -> str:
    remarks = bounded_remarks(remarks)
    if not remarks:
        raise BusinessRuleError(required_message)
    return remarks


def _ensure_may_submit(invoice: Invoice, kind: str, actor) -> None:
    ensure_member(actor=actor, clinic=invoice.clinic)
    if refusal := request_refusal(invoice, kind, actor):
        raise BusinessRuleError(refusal)


def _approvals_needed(invoice: Invoice, kind: str, *, breakdown, reason) -> int:
    """How many approvers the clinic's rules ask for this request's credit note; a request for
    something that needs none is refused (it is carried out directly instead)."""
    clinic = invoice.clinic
    needed = approvers_needed(clinic, kind, amount=breakdown.total, reason=reason)
    if needed == 0:
        rule = approval_rule_for(clinic, kind, amount=breakdown.total, reason=reason)
        raise BusinessRuleError(NO_APPROVAL_NEEDED.format(
            what="refund or credit" if kind == RequestKind.REFUND else "cancellation",
            amount=format_money(breakdown.total, invoice.currency), clinic=clinic.name,
            rule=rule.describe()))
    return needed


def _whole(invoice: Invoice):
    """The breakdown of crediting everything still creditable on the invoice."""
    return breakdown_compute(
        invoice=invoice, invoice_lines=invoice.lines.all(),
        payments=invoice.payments.select_related("method"),
        requested=[CreditLineInput(line) for line in invoice.lines.all()
                   if line.creditable_net > 0])


def _create(*, invoice: Invoice, kind: str, remarks: str, actor, approvals_needed: int,
            breakdown, dispute_reason: DisputeReason | None = None,
            lines: Sequence[LinePart] = ()) -> FinancialRequest:
    try:
        with transaction.atomic():  # a savepoint: a lost race on the unique index is refused
            financial_request = FinancialRequest.objects.create(
                clinic=invoice.clinic, invoice=invoice, kind=kind, remarks=remarks,
                requested_by=actor, approvals_needed=approvals_needed,
                dispute_reason=dispute_reason, frozen_breakdown=breakdown.frozen(),
                frozen_total=breakdown.total,
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
                                      for part in lines],
              "approvals_needed": approvals_needed,
              **({"reason": dispute_reason.name} if dispute_reason else {})},
    )
    notify_later("request_submitted", request_id=financial_request.pk)
    return financial_request


def refund_request_create(
    *,
    invoice: Invoice,
    remarks: str,
    actor,
    lines: Sequence[CreditLineInput] | None = None,
    dispute_reason: DisputeReason | None = None,
) -> FinancialRequest:
    """Ask for approval to refund or credit an invoice. With `lines` (amounts without tax, None
    for all that remains on a line), the approver approves exactly those amounts. The clinic's
    rules, for the credit note this would produce and `dispute_reason`, say how many approvers
    it needs; one that needs none is refused."""
    remarks = _clean_remarks(remarks)
    if dispute_reason is not None and not dispute_reason.is_active:
        raise BusinessRuleError(REASON_INACTIVE.format(reason=dispute_reason.name))
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        _ensure_may_submit(invoice, RequestKind.REFUND, actor)
        if lines:
            # the same rules as the refund itself, so nothing unexecutable is approved
            breakdown = breakdown_compute(
                invoice=invoice, invoice_lines=invoice.lines.all(),
                payments=invoice.payments.select_related("method"), requested=list(lines))
        else:
            breakdown = _whole(invoice)
        needed = _approvals_needed(invoice, RequestKind.REFUND, breakdown=breakdown,
                                   reason=dispute_reason)
        return _create(invoice=invoice, kind=RequestKind.REFUND, remarks=remarks, actor=actor,
                       approvals_needed=needed, dispute_reason=dispute_reason,
                       breakdown=breakdown,
                       lines=breakdown.lines if lines else ())


def cancellation_request_create(*, invoice: Invoice, remarks: str, actor) -> FinancialRequest:
    """Ask for approval to cancel an issued invoice. The clinic's cancellation rules, for the
    credit note the cancellation would produce, say how many approvers it needs."""
    remarks = _clean_remarks(remarks)
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        _ensure_may_submit(invoice, RequestKind.CANCELLATION, actor)
        breakdown = _whole(invoice)
        needed = _approvals_needed(invoice, RequestKind.CANCELLATION, breakdown=breakdown,
                                   reason=None)
        return _create(invoice=invoice, kind=RequestKind.CANCELLATION, remarks=remarks,
                       actor=actor, approvals_needed=needed, breakdown=breakdown)


def request_breakdown_now(financial_request: FinancialRequest, invoice: Invoice | None = None):
    """The breakdown the request describes, worked out on the invoice as it is now: its frozen
    lines and amounts (everything still creditable for a whole refund or a cancellation). None
    when it can no longer be carried out at all (the lines were credited meanwhile)."""
    invoice = invoice or financial_request.invoice
    frozen = financial_request.frozen_breakdown
    by_id = {line.pk: line for line in invoice.lines.all()}
    whole = financial_request.kind == RequestKind.CANCELLATION or not (
        financial_request.lines.exists())
    try:
        if whole:
            return _whole(invoice)
        requested = [CreditLineInput(by_id[part["line"]], Decimal(part["net"]))
                     for part in frozen["lines"]]
        return breakdown_compute(invoice=invoice, invoice_lines=by_id.values(),
                                 payments=invoice.payments.select_related("method"),
                                 requested=requested)
    except (BusinessRuleError, KeyError):
        return None


def requests_refresh_staleness(*, invoice: Invoice, actor=None,
                               cause: str = "the invoice changed") -> list[FinancialRequest]:
    """After a payment or a credit note on the invoice (in its transaction, the invoice
    locked): each open request whose breakdown would now differ from the one its approvers
    approved goes stale: it waits again, in a new round of approvals, for its approvers to
    confirm the new breakdown, which is frozen in its place. Returns those requests."""
    gone_stale = []
    for financial_request in (FinancialRequest.objects.select_for_update()
                              .filter(invoice=invoice, status__in=OPEN_STATUSES)
                              .exclude(frozen_breakdown=None).order_by("pk")):
        financial_request.invoice = invoice
        now = request_breakdown_now(financial_request, invoice)
        if now is not None and now.frozen() == financial_request.frozen_breakdown:
            continue
        from_state = financial_request.status
        before = financial_request.frozen_breakdown
        financial_request.go_stale()
        financial_request.stale = True
        financial_request.approval_round += 1
        financial_request.expires_at = None
        if now is not None:
            financial_request.frozen_breakdown = now.frozen()
            financial_request.frozen_total = now.total
        financial_request.save()
        audit_event_record(
            actor=actor, clinic=invoice.clinic, invoice=invoice, obj=financial_request,
            action=Action.REQUEST_STALE, from_state=from_state,
            to_state=financial_request.status,
            amount=financial_request.frozen_total,
            data={"cause": cause, "was": before, "now": financial_request.frozen_breakdown,
                  "round": financial_request.approval_round})
        notify_later("request_stale", request_id=financial_request.pk)
        gone_stale.append(financial_request)
    return gone_stale


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
    """One decision. A rejection by anyone ends the request; an approval is recorded as one of
    the approvals the request needs, and the last of them approves it."""
    with transaction.atomic():
        financial_request = _lock_request(financial_request)
        ensure_member(actor=actor, clinic=financial_request.clinic)
        if refusal := decision_refusal(financial_request, actor):
            raise BusinessRuleError(refusal)
        from_state = financial_request.status
        now = timezone.now()
        data = {}
        if approve:
            step = financial_request.approvals.filter(
                round=financial_request.approval_round).count() + 1
            RequestApproval.objects.create(
                request=financial_request, round=financial_request.approval_round, step=step,
                approved_by=actor,
                requested_by_id=financial_request.requested_by_id, approved_at=now,
                remarks=remarks)
            data = {"approval": step, "approvals_needed": financial_request.approvals_needed}
            if step >= financial_request.approvals_needed:
                financial_request.approve()
        else:
            financial_request.reject()
        if financial_request.status != from_state:  # decided: approved at last, or rejected
            financial_request.decided_by = actor
            financial_request.decided_at = now
            financial_request.decision_remarks = remarks
        if financial_request.status == RequestStatus.APPROVED:
            financial_request.stale = False  # its approvers confirmed the new breakdown
            # not carried out within the clinic's days, it expires (housekeeping.py)
            financial_request.expires_at = financial_request.decided_at + datetime.timedelta(
                days=financial_request.clinic.approval_expiry_days)
        financial_request.save()
        audit_event_record(
            actor=actor, clinic=financial_request.clinic, invoice=financial_request.invoice,
            obj=financial_request,
            action=Action.REQUEST_APPROVED if approve else Action.REQUEST_REJECTED,
            from_state=from_state, to_state=financial_request.status, remarks=remarks,
            data=data,
        )
        if financial_request.status != from_state:
            notify_later("request_decided", request_id=financial_request.pk)
        else:  # the first of two approvals: the clinic's other approvers are asked for theirs
            notify_later("request_second_approval", request_id=financial_request.pk)
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


@dataclass(frozen=True)
class RuleSpec:
    """One approval rule to set: what it needs, for which totals (both ends included) and
    reasons (none: any)."""

    approvers: str
    amount_from: Decimal | None = None
    amount_up_to: Decimal | None = None
    reasons: tuple[DisputeReason, ...] = ()


def approval_rules_set(*, clinic: Clinic, kind: str, rules: Sequence[RuleSpec]) -> None:
    """Replace the clinic's rules for `kind` by `rules`, in this order (administrators edit
    them in the admin; the demo data and data loads use this)."""
    with transaction.atomic():
        ApprovalRule.objects.filter(clinic=clinic, kind=kind).delete()
        for position, spec in enumerate(rules, start=1):
            rule = ApprovalRule(clinic=clinic, kind=kind, position=position,
                                approvers=spec.approvers, amount_from=spec.amount_from,
                                amount_up_to=spec.amount_up_to)
            rule.full_clean(exclude=["reasons"])
            rule.save()
            rule.reasons.set(spec.reasons)
    clinic.__dict__.pop("_approval_rules", None)  # this clinic object reads them again


def approval_policy_set(*, clinic: Clinic, kind: str, policy: str) -> None:
    """One rule for everything: `direct` needs no approver, `approval` one."""
    approval_rules_set(clinic=clinic, kind=kind, rules=[
        RuleSpec(Approvers.NONE if policy == Policy.DIRECT else Approvers.ONE)])


@dataclass(frozen=True)
class DecisionOutcome:
    """One request's outcome in a bulk decision: decided (the request as it now is), or the
    plain reason it could not be."""

    request_id: int
    financial_request: FinancialRequest | None = None
    refusal: str = ""

    @property
    def ok(self) -> bool:
        return not self.refusal


NOT_FOUND = "Request #{pk} is not one of your clinics' requests."


def requests_decide_many(*, request_ids: Sequence[int], actor, approve: bool,
                         remarks: str = "", visible=None) -> list[DecisionOutcome]:
    """Approve (or reject, with one remark for all) several requests: each decided in its own
    transaction, so one that cannot be decided leaves the others decided. `visible`: the
    requests the actor may see (a queryset); an id outside it is reported as not found. The
    outcomes come in the order of `request_ids`, each id once."""
    found = {request.pk: request for request in (
        visible if visible is not None else FinancialRequest.objects.all()).filter(
        pk__in=list(request_ids))}
    outcomes = []
    for pk in dict.fromkeys(request_ids):
        financial_request = found.get(pk)
        if financial_request is None:
            outcomes.append(DecisionOutcome(pk, refusal=NOT_FOUND.format(pk=pk)))
            continue
        try:
            decided = (request_approve(financial_request=financial_request, actor=actor,
                                       remarks=remarks) if approve else
                       request_reject(financial_request=financial_request, actor=actor,
                                      remarks=remarks))
        except BusinessRuleError as error:
            outcomes.append(DecisionOutcome(pk, refusal=error.message))
        else:
            outcomes.append(DecisionOutcome(pk, financial_request=decided))
    return outcomes
