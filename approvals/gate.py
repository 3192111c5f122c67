"""The policy gate every refund, credit and cancellation passes through (screens and API alike).

Where the clinic's first matching approval rule (by the credit note's total and reason) needs no
approver, staff with the permission act at once; otherwise the action needs the invoice's
approved request of the right kind, and carrying it out completes the request in the same
transaction as the credit note. The rules themselves are in approvals/rules.py."""

from decimal import Decimal

from django.utils import timezone

from audit.models import Action
from audit.services import audit_event_record
from billing.exceptions import BusinessRuleError
from billing.models import DisputeReason, Invoice
from billing.money import format_money

from .models import OPEN_STATUSES, FinancialRequest
from .rules import (
    approval_refusal,
    approval_rule_for,
    approvers_needed,
    open_refund_request_refusal,
)

LINE_NOT_APPROVED = "“{line}” is not in the approved request: credit only the approved lines."
PAYS_BACK_MORE = (
    "{request} approved paying back at most {approved}; this would pay back {amount}."
)
LINE_OVER_APPROVED = (
    "The approved request allows at most {approved} (without tax) on “{line}”; {amount} is more."
)


def approval_required(*, invoice: Invoice, kind: str, amount: Decimal,
                      reason: DisputeReason | None = None,
                      approval_request: FinancialRequest | None = None, lock: bool = True,
                      ) -> FinancialRequest | None:
    """The approved request that authorises a credit note of `amount` (its total) for
    `reason`: the one named, or the invoice's open request of this kind; None where the
    clinic's first matching rule needs no approver (an open request is then left as it is, and
    goes stale if the credit note changes what it describes). Locked (call with the invoice
    already locked) unless `lock` is False: the breakdown staff see before confirming asks the
    same question without locking anything."""
    found = FinancialRequest.objects.select_for_update() if lock else FinancialRequest.objects
    if approval_request is not None:
        approval_request = found.get(pk=approval_request.pk)
    named = approval_request is not None
    if not named:
        approval_request = (found.filter(invoice=invoice, kind=kind, status__in=OPEN_STATUSES)
                            .order_by("-pk").first())
    if refusal := approval_refusal(invoice, kind, approval_request, amount=amount,
                                   reason=reason, named=named):
        raise BusinessRuleError(refusal)
    if not named and approvers_needed(invoice.clinic, kind, amount=amount, reason=reason) == 0:
        return None  # carried out directly; an open request is left as it is
    return approval_request


def approval_waiver(*, invoice: Invoice, kind: str, amount: Decimal,
                    reason: DisputeReason | None = None) -> str:
    """The rule that let an action go without approval, for its audit event."""
    rule = approval_rule_for(invoice.clinic, kind, amount=amount, reason=reason)
    return str(rule) if rule is not None else ""


def ensure_no_open_refund_request(*, invoice: Invoice) -> None:
    """A cancelled invoice must not leave a refund request hanging open against it."""
    if refusal := open_refund_request_refusal(invoice):
        raise BusinessRuleError(refusal)


def approval_check_lines(*, approval_request: FinancialRequest, breakdown) -> None:
    """An approval authorises exactly what was approved: the lines of its frozen breakdown, each
    up to its amount without tax, and no more paid back than it showed (a request from before
    breakdowns were frozen: its proposed lines, if any)."""
    currency = breakdown.currency
    frozen = approval_request.frozen_breakdown
    if frozen:
        approved = {part["line"]: Decimal(part["net"]) for part in frozen["lines"]}
    else:
        approved = {line.invoice_line_id: line.amount for line in approval_request.lines.all()}
    for part in breakdown.lines if approved else ():
        limit = approved.get(part.invoice_line.pk)
        if limit is None:
            raise BusinessRuleError(LINE_NOT_APPROVED.format(line=part.invoice_line))
        if part.net > limit:
            raise BusinessRuleError(LINE_OVER_APPROVED.format(
                approved=format_money(limit, currency), amount=format_money(part.net, currency),
                line=part.invoice_line))
    if frozen and breakdown.post_payment > Decimal(frozen["paid_back"]):
        raise BusinessRuleError(PAYS_BACK_MORE.format(
            request=approval_request, approved=format_money(Decimal(frozen["paid_back"]),
                                                            currency),
            amount=format_money(breakdown.post_payment, currency)))


def approval_complete(*, approval_request: FinancialRequest, actor, credit_note) -> None:
    """Consume the approval, in the credit note's transaction."""
    from_state = approval_request.status
    approval_request.complete()
    approval_request.completed_by = actor
    approval_request.completed_at = timezone.now()
    approval_request.save()
    audit_event_record(
        actor=actor, clinic=approval_request.clinic, invoice=approval_request.invoice,
        obj=approval_request, action=Action.REQUEST_COMPLETED, from_state=from_state,
        to_state=approval_request.status, amount=credit_note.amount,
        data={"credit_note": credit_note.number},
    )
