"""The policy gate every refund, credit and cancellation passes through (screens and API alike).

Direct clinics: staff with the permission act at once. Approval clinics: the action needs the
invoice's approved request of the right kind; carrying it out completes the request in the same
transaction as the credit note."""

from django.utils import timezone

from audit.models import Action
from audit.services import audit_event_record
from billing.exceptions import BusinessRuleError
from billing.models import Invoice, Policy
from billing.money import format_money

from .models import FinancialRequest, RequestKind, RequestStatus

NEEDS_REFUND_REQUEST = (
    "Refunds and credits at {clinic} need approval: submit an Invoice Refund Request first."
)
NEEDS_CANCELLATION_REQUEST = (
    "Cancellations at {clinic} need approval: submit an Invoice Cancellation Request first."
)
AWAITING_DECISION = (
    "The {kind} for {invoice} is waiting for a financial approver's decision; "
    "act once it is approved."
)
REQUEST_NOT_APPROVED = "{request} is {status}, not approved: it cannot be carried out."
REQUEST_OTHER_INVOICE = "{request} is for another invoice or another kind of action."
OPEN_REFUND_REQUEST = (
    "{invoice} has an open Invoice Refund Request (#{pk}, {status}). Settle it first (carry it "
    "out, or withdraw it while it waits for a decision), then cancel the invoice."
)
LINE_NOT_APPROVED = "“{line}” is not in the approved request: credit only the approved lines."
LINE_OVER_APPROVED = (
    "The approved request allows at most {approved} (without tax) on “{line}”; {amount} is more."
)


def _policy(invoice: Invoice, kind: str) -> str:
    clinic = invoice.clinic
    return clinic.refund_policy if kind == RequestKind.REFUND else clinic.cancellation_policy


def approval_required(*, invoice: Invoice, kind: str,
                      request: FinancialRequest | None = None) -> FinancialRequest | None:
    """The locked, approved request that authorises this action, or None in a direct clinic.
    Call with the invoice already locked."""
    if _policy(invoice, kind) == Policy.DIRECT and request is None:
        return None
    if request is None:
        request = (FinancialRequest.objects.select_for_update()
                   .filter(invoice=invoice, kind=kind, status__in=[RequestStatus.APPROVED,
                                                                  RequestStatus.REQUESTED])
                   .order_by("-pk").first())
        if request is None:
            template = (NEEDS_REFUND_REQUEST if kind == RequestKind.REFUND
                        else NEEDS_CANCELLATION_REQUEST)
            raise BusinessRuleError(template.format(clinic=invoice.clinic.name))
        if request.status == RequestStatus.REQUESTED:
            raise BusinessRuleError(AWAITING_DECISION.format(
                kind=request.get_kind_display(), invoice=invoice))
    else:
        request = FinancialRequest.objects.select_for_update().get(pk=request.pk)
    if request.invoice_id != invoice.pk or request.kind != kind:
        raise BusinessRuleError(REQUEST_OTHER_INVOICE.format(request=request))
    if request.status != RequestStatus.APPROVED:
        raise BusinessRuleError(REQUEST_NOT_APPROVED.format(
            request=request, status=request.get_status_display().lower()))
    return request


def ensure_no_open_refund_request(*, invoice: Invoice) -> None:
    """A cancelled invoice must not leave a refund request hanging open against it."""
    open_request = FinancialRequest.objects.filter(
        invoice=invoice, kind=RequestKind.REFUND,
        status__in=[RequestStatus.REQUESTED, RequestStatus.APPROVED]).first()
    if open_request:
        raise BusinessRuleError(OPEN_REFUND_REQUEST.format(
            invoice=invoice, pk=open_request.pk,
            status=open_request.get_status_display().lower()))


def approval_check_lines(*, request: FinancialRequest, breakdown) -> None:
    """A refund request with proposed lines authorises those lines, up to those amounts."""
    approved = {line.invoice_line_id: line.amount for line in request.lines.all()}
    if not approved:
        return
    currency = breakdown.currency
    for part in breakdown.lines:
        limit = approved.get(part.invoice_line.pk)
        if limit is None:
            raise BusinessRuleError(LINE_NOT_APPROVED.format(line=part.invoice_line))
        if part.net > limit:
            raise BusinessRuleError(LINE_OVER_APPROVED.format(
                approved=format_money(limit, currency), amount=format_money(part.net, currency),
                line=part.invoice_line))


def approval_complete(*, request: FinancialRequest, actor, credit_note) -> None:
    """Consume the approval, in the credit note's transaction."""
    from_state = request.status
    request.complete()
    request.completed_by = actor
    request.completed_at = timezone.now()
    request.save()
    audit_event_record(
        actor=actor, clinic=request.clinic, invoice=request.invoice, obj=request,
        action=Action.REQUEST_COMPLETED, from_state=from_state, to_state=request.status,
        amount=credit_note.amount, data={"credit_note": credit_note.number},
    )
