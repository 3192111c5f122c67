"""Credit notes, refunds and cancellation: one engine every screen and the API call.

Each write locks the invoice, then its payments (always in that order), checks every cap with a
plain message, writes the credit note, its lines, refunds and running totals, moves the state
machines and writes the audit events in one transaction. Gateways are called only after commit,
never while a lock is held."""

import datetime
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from approvals.gate import (
    approval_check_lines,
    approval_complete,
    approval_required,
    approval_waiver,
    ensure_no_open_refund_request,
)
from approvals.models import FinancialRequest, RequestKind
from approvals.services import requests_refresh_staleness
from audit.context import audit_context
from audit.models import Action
from audit.services import audit_event_record
from billing.access import ensure_can, ensure_member, ensure_permission
from billing.breakdown import Breakdown, CreditLineInput, breakdown_compute
from billing.exceptions import BusinessRuleError
from billing.models import (
    CANCELLATION_REASON,
    DisputeReason,
    Invoice,
    InvoiceLine,
    NumberSeries,
    Payment,
)
from billing.numbering import number_take
from billing.queueing import queue_after_commit
from billing.rules import cancellation_refusal, refund_refusal
from billing.services import invoice_lock
from billing.text import bounded_remarks

from . import tasks
from .gateways import GatewayUnavailable, UnknownGateway, gateway_for
from .models import CreditNote, CreditNoteKind, CreditNoteLine, Refund, RefundStatus
from .rules import payout_refusal, retry_refusal

logger = logging.getLogger(__name__)


REASON_REQUIRED = "Choose a dispute reason."
REASON_INACTIVE = "The dispute reason “{reason}” is no longer in use: choose another."
REASON_FOR_CANCELLATIONS = (
    "“{reason}” is the reason cancellations carry: choose the reason for this refund or credit."
)
CANCEL_REMARKS = "Say why the invoice is cancelled."


def _lock(invoice: Invoice) -> tuple[Invoice, list[Payment]]:
    """Lock the invoice row, then its payments, in that fixed order; its lines are read once."""
    locked = invoice_lock(invoice)
    prefetch_related_objects([locked], "lines")
    payments = list(
        Payment.objects.filter(invoice=locked).select_related("method")
        .order_by("pk").select_for_update(of=("self",))
    )
    return locked, payments


def _check_reason(reason: DisputeReason | None, *, cancellation: bool = False) -> DisputeReason:
    if reason is None:
        raise BusinessRuleError(REASON_REQUIRED)
    if not reason.is_active:
        raise BusinessRuleError(REASON_INACTIVE.format(reason=reason.name))
    if reason.name == CANCELLATION_REASON and not cancellation:
        raise BusinessRuleError(REASON_FOR_CANCELLATIONS.format(reason=reason.name))
    return reason


def _plan(invoice: Invoice, payments: list[Payment],
          lines: Sequence[CreditLineInput] | None, payment, *, full: bool = False) -> Breakdown:
    """The breakdown of `lines`. The full refund is refused unless `refund_refusal(full=True)`
    allows it; without `lines` (None) it takes everything still creditable."""
    if full:
        if refusal := refund_refusal(invoice, full=True):
            raise BusinessRuleError(refusal)
        if lines is None:
            lines = [CreditLineInput(line) for line in invoice.lines.all()
                     if line.creditable_net > 0]
    return breakdown_compute(
        invoice=invoice,
        invoice_lines=invoice.lines.all(),
        payments=payments,
        requested=lines,
        payment=payment,
    )


def _ensure_may_execute(*, actor, breakdown: Breakdown) -> None:
    """The permission the planned credit note needs; every caller has checked membership."""
    if breakdown.post_payment > 0:
        ensure_permission(actor=actor, permission="billing.refund_invoice",
                          action="refund invoices")
    else:
        ensure_permission(actor=actor, permission="billing.credit_invoice",
                          action="credit invoice lines")


def credit_note_preview(
    *,
    invoice: Invoice,
    lines: Sequence[CreditLineInput] | None = None,
    actor,
    payment: Payment | None = None,
    full: bool = False,
    dispute_reason: DisputeReason | None = None,
) -> Breakdown:
    """The breakdown staff confirm before anything happens, refused for the same reasons the
    credit note would be (the approval rules and an approval's line limits included). Writes
    nothing, locks nothing."""
    invoice = Invoice.objects.select_related("clinic").get(pk=invoice.pk)
    ensure_member(actor=actor, clinic=invoice.clinic)
    payments = list(invoice.payments.select_related("method").order_by("pk"))
    breakdown = _plan(invoice, payments, lines, payment, full=full)
    _ensure_may_execute(actor=actor, breakdown=breakdown)
    approval_request = approval_required(invoice=invoice, kind=RequestKind.REFUND, lock=False,
                                         amount=breakdown.total, reason=dispute_reason)
    if approval_request is not None:
        approval_check_lines(approval_request=approval_request, breakdown=breakdown)
    return breakdown


def credit_note_create(
    *,
    invoice: Invoice,
    lines: Sequence[CreditLineInput] | None = None,
    dispute_reason: DisputeReason | None,
    actor,
    payment: Payment | None = None,
    remarks: str = "",
    full: bool = False,
    approval_request: FinancialRequest | None = None,
) -> CreditNote:
    """Credit the chosen lines (amount without tax, None = all that remains). The part beyond
    the balance due is refunded: to `payment` first, then to the latest payments. `full`: the
    full refund, refused unless money paid is left to refund; without `lines` it credits
    everything still creditable (the web's Refund page names the lines it ticked). Where the
    clinic needs approval, the invoice's approved refund request authorises
    it and is completed with it."""
    _check_reason(dispute_reason)
    with transaction.atomic():
        locked, payments = _lock(invoice)
        ensure_member(actor=actor, clinic=locked.clinic)
        breakdown = _plan(locked, payments, lines, payment, full=full)
        kind = CreditNoteKind.REFUND if breakdown.post_payment > 0 else CreditNoteKind.CREDIT
        _ensure_may_execute(actor=actor, breakdown=breakdown)
        approval_request = approval_required(invoice=locked, kind=RequestKind.REFUND,
                                             amount=breakdown.total, reason=dispute_reason,
                                             approval_request=approval_request)
        return _issue(invoice=locked, breakdown=breakdown, kind=kind,
                      approval_request=approval_request, reason=dispute_reason,
                      remarks=remarks, actor=actor)


def invoice_cancel(*, invoice: Invoice, remarks: str, actor,
                   dispute_reason: DisputeReason | None = None,
                   approval_request: FinancialRequest | None = None) -> CreditNote:
    """Void an issued invoice: a cancellation credit note for the balance, then `cancelled`.
    Refused while money paid on it has not been refunded: such an invoice is refunded instead."""
    remarks = bounded_remarks(remarks)
    with transaction.atomic():
        locked, payments = _lock(invoice)
        ensure_can(actor=actor, clinic=locked.clinic, permission="billing.cancel_invoice",
                   action="cancel invoices")
        if refusal := cancellation_refusal(locked):
            raise BusinessRuleError(refusal)
        if not remarks:
            raise BusinessRuleError(CANCEL_REMARKS)
        remaining = [CreditLineInput(line) for line in locked.lines.all()
                     if line.creditable_net > 0]
        breakdown = _plan(locked, payments, remaining, None)
        # cancellations are matched against the clinic's rules without a dispute reason
        approval_request = approval_required(invoice=locked, kind=RequestKind.CANCELLATION,
                                             amount=breakdown.total,
                                             approval_request=approval_request)
        ensure_no_open_refund_request(invoice=locked)
        if dispute_reason is None:
            dispute_reason, _ = DisputeReason.objects.get_or_create(name=CANCELLATION_REASON)
        return _issue(invoice=locked, breakdown=breakdown, kind=CreditNoteKind.CANCELLATION,
                      approval_request=approval_request,
                      reason=_check_reason(dispute_reason, cancellation=True),
                      remarks=remarks, actor=actor)


def _issue(*, invoice: Invoice, breakdown: Breakdown, kind: str, reason: DisputeReason,
           remarks: str, actor, approval_request: FinancialRequest | None) -> CreditNote:
    """Write a planned credit note; the caller holds the locks and has checked permission.
    An approval is checked against the plan and completed in the same transaction."""
    if approval_request is not None:
        approval_check_lines(approval_request=approval_request, breakdown=breakdown)
    remarks = bounded_remarks(remarks)
    # Running totals first and the credit-note number last: every credit note of a clinic
    # queues on its number row until commit, so the row is held for as few statements as can be.
    for part in breakdown.lines:
        part.invoice_line.credited_net += part.net
        part.invoice_line.credited_tax += part.tax
    InvoiceLine.objects.bulk_update([part.invoice_line for part in breakdown.lines],
                                    ["credited_net", "credited_tax"])
    for part in breakdown.refunds:
        part.payment.amount_refunded += part.amount
    Payment.objects.bulk_update([part.payment for part in breakdown.refunds],
                                ["amount_refunded"])

    from_state = invoice.status
    if kind == CreditNoteKind.CANCELLATION:
        invoice.cancel()  # its guard asks cancellation_refusal of the invoice as it stands
    invoice.amount_credited += breakdown.total
    invoice.amount_refunded += breakdown.post_payment
    if kind != CreditNoteKind.CANCELLATION:
        invoice.apply_credit()
    invoice.save()

    sequence, number = number_take(clinic=invoice.clinic, kind=NumberSeries.Kind.CREDIT_NOTE)
    note = CreditNote.objects.create(
        clinic=invoice.clinic, invoice=invoice, account_id=invoice.account_id,
        currency=invoice.currency, number=number, sequence=sequence, kind=kind,
        subtotal=breakdown.subtotal, tax_amount=breakdown.tax_amount, amount=breakdown.total,
        amount_applied=breakdown.pre_payment, amount_unapplied=breakdown.post_payment,
        is_credit=breakdown.post_payment == 0, description=remarks, dispute_reason=reason,
        approval_request=approval_request, created_by=actor, issued_at=timezone.now(),
    )
    CreditNoteLine.objects.bulk_create([
        CreditNoteLine(credit_note=note, invoice_line=part.invoice_line, net=part.net,
                       tax=part.tax, total=part.total)
        for part in breakdown.lines
    ])
    refunds = Refund.objects.bulk_create([
        Refund(
            invoice=invoice, credit_note=note, payment=part.payment, amount=part.amount,
            currency=invoice.currency, method_name=part.payment.method.name,
            gateway=part.payment.method.gateway if part.payment.method.is_gateway else "",
            status=(RefundStatus.PENDING if part.payment.method.is_gateway
                    else RefundStatus.AWAITING_PAYOUT),
            created_by=actor,
        )
        for part in breakdown.refunds
    ])

    audit_event_record(
        actor=actor, clinic=invoice.clinic, invoice=invoice, obj=note,
        action=Action.INVOICE_CANCELLED if kind == CreditNoteKind.CANCELLATION
        else Action.CREDIT_NOTE_ISSUED,
        from_state=from_state, to_state=invoice.status, amount=note.amount, remarks=remarks,
        data={"number": note.number, "kind": kind, "reason": reason.name,
              "applied": str(note.amount_applied), "refunded": str(note.amount_unapplied),
              "lines": [{"line": p.invoice_line.pk, "net": str(p.net), "tax": str(p.tax)}
                        for p in breakdown.lines],
              # carried out without approval: the clinic's rule that allowed it
              **({} if approval_request is not None else {"approval_rule": approval_waiver(
                  invoice=invoice, amount=note.amount,
                  kind=RequestKind.CANCELLATION if kind == CreditNoteKind.CANCELLATION
                  else RequestKind.REFUND,
                  reason=None if kind == CreditNoteKind.CANCELLATION else reason)})},
    )
    if approval_request is not None:
        approval_complete(approval_request=approval_request, actor=actor, credit_note=note)
    # another open request on the invoice may now describe a different credit note
    requests_refresh_staleness(invoice=invoice, actor=actor,
                               cause=f"credit note {note.number} was issued")
    for refund in refunds:
        audit_event_record(
            actor=actor, clinic=invoice.clinic, invoice=invoice, obj=refund,
            action=Action.REFUND_CREATED, to_state=refund.status, amount=refund.amount,
            data={"payment": refund.payment_id, "method": refund.method_name,
                  "credit_note": note.number},
        )
        if refund.is_gateway:
            queue_after_commit(tasks.refund_send, refund.pk)
    return note


def refund_send(*, refund_id: int) -> Refund:
    """Send a pending gateway refund and record the answer (the refund_send task, after
    commit; refunds_reconcile). No lock is held during the call, and the refund's idempotency
    key makes a repeated call harmless. A refund no longer pending is left as it is. Raises
    GatewayUnavailable when the gateway gave no answer (a timeout, a 5xx): the refund stays
    pending, for the caller to send again later."""
    refund = Refund.objects.select_related("payment__method").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    try:
        adapter = gateway_for(refund.gateway)
    except UnknownGateway as error:
        logger.warning("Refund %s stays pending: %s", refund.pk, error)
        return refund
    result = adapter.refund(payment=refund.payment, amount=refund.amount,
                            currency=refund.currency, idempotency_key=str(refund.idempotency_key),
                            retry=refund.retries)
    with audit_context(client=f"gateway:{refund.gateway}"):
        return _record_gateway_result(refund_id=refund.pk, result=result)


def _record_gateway_result(*, refund_id: int, result) -> Refund:
    with transaction.atomic():
        invoice_id = Refund.objects.values_list("invoice_id", flat=True).get(pk=refund_id)
        invoice = invoice_lock(invoice_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        refund.attempts += 1
        if refund.status != RefundStatus.PENDING or result.status == "pending":
            if result.reference and not refund.gateway_reference:
                refund.gateway_reference = result.reference
            refund.save(update_fields=["attempts", "gateway_reference", "updated_at"])
            return refund
        from_state = refund.status
        refund.gateway_reference = result.reference or refund.gateway_reference
        if result.status == "succeeded":
            refund.succeed()
            refund.failure_reason = ""
            refund.completed_at = timezone.now()
        else:
            refund.fail()
            refund.failure_reason = (result.failure_reason or "The gateway declined the refund.")[
                :300]
        refund.save()
        audit_event_record(
            actor=None, clinic=invoice.clinic, invoice=invoice, obj=refund,
            action=(Action.REFUND_SUCCEEDED if refund.status == RefundStatus.SUCCEEDED
                    else Action.REFUND_FAILED), from_state=from_state, to_state=refund.status,
            amount=refund.amount, remarks=refund.failure_reason,
            data={"gateway": refund.gateway, "reference": refund.gateway_reference},
        )
    return refund


def _lock_refund(refund: Refund, *, actor, rule) -> tuple[Invoice, Refund]:
    """Lock the refund's invoice, then the refund; refuse unless the actor is a member of its
    clinic and `rule` (refunds/rules.py) allows it."""
    invoice = invoice_lock(refund.invoice_id)
    locked = Refund.objects.select_for_update().get(pk=refund.pk)
    ensure_member(actor=actor, clinic=invoice.clinic)
    if refusal := rule(locked, actor):
        raise BusinessRuleError(refusal)
    return invoice, locked


def refund_retry(*, refund: Refund, actor) -> Refund:
    """Send a failed gateway refund again, with the same idempotency key."""
    with transaction.atomic():
        invoice, refund = _lock_refund(refund, actor=actor, rule=retry_refusal)
        from_state = refund.status
        refund.retry()
        refund.retries += 1
        refund.save()
        audit_event_record(
            actor=actor, clinic=invoice.clinic, invoice=invoice, obj=refund,
            action=Action.REFUND_RETRIED, from_state=from_state, to_state=refund.status,
            amount=refund.amount,
        )
        queue_after_commit(tasks.refund_send, refund.pk)
    return refund


def refund_mark_paid_out(*, refund: Refund, actor, remarks: str = "") -> Refund:
    """Staff paid a manual refund back outside the system (cash, transfer…)."""
    remarks = bounded_remarks(remarks)
    with transaction.atomic():
        invoice, refund = _lock_refund(refund, actor=actor, rule=payout_refusal)
        from_state = refund.status
        refund.mark_paid_out()
        refund.paid_out_by = actor
        refund.completed_at = timezone.now()
        refund.save()
        audit_event_record(
            actor=actor, clinic=invoice.clinic, invoice=invoice, obj=refund,
            action=Action.REFUND_PAID_OUT, from_state=from_state, to_state=refund.status,
            amount=refund.amount, remarks=remarks,
        )
    return refund


def refunds_pending_beyond_grace(*, older_than_seconds: int | None = None):
    """Gateway refunds still pending after the grace period (REFUND_PENDING_GRACE_SECONDS):
    their task was lost, or the gateway has not answered yet."""
    if older_than_seconds is None:
        older_than_seconds = settings.REFUND_PENDING_GRACE_SECONDS
    cutoff = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
    return Refund.objects.filter(status=RefundStatus.PENDING, updated_at__lte=cutoff)


def refunds_reconcile(*, older_than_seconds: int | None = None) -> dict[str, int]:
    """Send again every gateway refund left pending beyond the grace period (a worker killed
    mid-call, a crash between commit and queue). One answered or not, the next is sent."""
    counts: dict[str, int] = {}
    pending = refunds_pending_beyond_grace(older_than_seconds=older_than_seconds)
    for refund_id in pending.order_by("pk").values_list("pk", flat=True):
        try:
            status = refund_send(refund_id=refund_id).status
        except GatewayUnavailable as error:
            logger.warning("Refund %s stays pending: %s", refund_id, error)
            status = RefundStatus.PENDING
        counts[status] = counts.get(status, 0) + 1
    return counts

