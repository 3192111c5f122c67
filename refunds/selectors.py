"""Reads for the invoice page: what was refunded or credited under each line, and the refunds
still waiting for staff or the gateway."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.http import Http404

from billing.breakdown import payout_instruction
from billing.models import Account, Invoice
from billing.selectors import SEARCH_MIN_FRAGMENT, among, spellings, visible_to

from .models import NEEDS_ATTENTION, CreditNote, CreditNoteKind, CreditNoteLine, Refund

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


def credit_notes_search(*, user, search: str = "", kind: str = "") -> QuerySet[CreditNote]:
    """Credit notes of the user's clinics, newest first: by kind, and by number, invoice number
    or patient. As for invoices, an exact number is tried before any fragment, and each
    searched column is its own indexed condition."""
    notes = visible_to(CreditNote.objects.all(), user=user).select_related(
        "clinic", "invoice", "account", "dispute_reason", "created_by")
    if kind:
        notes = notes.filter(kind=kind)
    if search := search.strip():
        invoices = visible_to(Invoice.objects.all(), user=user)
        patients = visible_to(Account.objects.all(), user=user)
        whole = spellings(search)
        exact = notes.filter(
            Q(number__in=whole)
            | among("invoice", invoices.filter(number__in=whole),
                    otherwise=Q(invoice__number__in=whole))
            | among("account", patients.filter(number__in=whole),
                    otherwise=Q(account__number__in=whole)))
        if exact.exists() or len(search) < SEARCH_MIN_FRAGMENT:
            notes = exact
        else:
            notes = notes.filter(
                Q(number__icontains=search)
                | among("invoice", invoices.filter(number__icontains=search),
                        otherwise=Q(invoice__number__icontains=search))
                | among("account", patients.filter(Q(name__icontains=search)
                                                   | Q(number__icontains=search)),
                        otherwise=(Q(account__name__icontains=search)
                                   | Q(account__number__icontains=search))))
    return notes.order_by("-issued_at", "-pk")


def credit_note_get_for_user(*, user, pk) -> CreditNote:
    """The credit note, or 404 when it does not exist or belongs to a clinic the user is not in
    (its page and its PDF answer alike)."""
    try:
        return credit_notes_search(user=user).get(pk=pk)
    except CreditNote.DoesNotExist:
        raise Http404("No such credit note in your clinics.") from None


def refunds_sending(*, user) -> QuerySet[Refund]:
    """Gateway refunds queued or in flight, newest first."""
    return visible_to(Refund.objects.all(), user=user, clinic_path="invoice__clinic").filter(
        status=Refund.Status.PENDING,
    ).exclude(gateway="").select_related("invoice", "invoice__account").order_by(
        "-created_at", "-pk")


def refunds_needing_attention(*, user) -> QuerySet[Refund]:
    """Refunds staff must act on: declined by the gateway, or waiting to be paid out by hand."""
    return visible_to(Refund.objects.all(), user=user, clinic_path="invoice__clinic").filter(
        status__in=NEEDS_ATTENTION,
    ).select_related("invoice", "invoice__account").order_by("created_at", "pk")


def credit_notes_for_account(*, account: Account) -> QuerySet[CreditNote]:
    """A patient's credit notes, newest first, with the invoice each one reduced."""
    return CreditNote.objects.filter(account=account).select_related("invoice").order_by(
        "-issued_at", "-pk")
