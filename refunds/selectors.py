"""Reads for the invoice page: what was refunded or credited under each line, and the refunds
still waiting for staff or the gateway."""

from collections import defaultdict
from decimal import Decimal

from billing.models import Invoice

from .breakdown import payout_instruction
from .models import CreditNote, CreditNoteKind, CreditNoteLine, Refund

LINE_LABELS = {
    CreditNoteKind.REFUND: "Refunded",
    CreditNoteKind.CREDIT: "Credited",
    CreditNoteKind.CANCELLATION: "Cancelled",
}


def line_credit_summary(*, invoice: Invoice) -> dict[int, list[tuple[str, Decimal]]]:
    """{invoice line id: [("Refunded", 5.250), ("Credited", 1.050)]}, by credit note kind."""
    totals: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    rows = CreditNoteLine.objects.filter(credit_note__invoice=invoice).values_list(
        "invoice_line_id", "credit_note__kind", "total")
    for line_id, kind, total in rows:
        totals[line_id][LINE_LABELS[kind]] += total
    return {line_id: list(by_label.items()) for line_id, by_label in totals.items()}


def credit_notes_for_invoice(*, invoice: Invoice):
    return CreditNote.objects.filter(invoice=invoice).select_related(
        "dispute_reason", "created_by").order_by("issued_at", "pk")


def refunds_for_invoice(*, invoice: Invoice) -> list[Refund]:
    refunds = list(Refund.objects.filter(invoice=invoice).select_related(
        "credit_note", "payment").order_by("created_at", "pk"))
    for refund in refunds:
        refund.instruction = (
            payout_instruction(refund.amount, refund.currency, refund.method_name)
            if refund.status == Refund.Status.AWAITING_PAYOUT else ""
        )
    return refunds
