from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.db.models import F

from approvals.gate import LINE_NOT_APPROVED
from billing.forms import LinePickerMixin
from billing.models import DisputeReason, InvoiceLine, Payment

from .models import CreditNoteKind
from .services import CANCELLATION_REASON


@dataclass(frozen=True)
class CreditRow:
    """One invoice line on the refund form: its tick box and amount, the most an approved
    request allows on it (None: no limit), and why it cannot be chosen (None: it can)."""

    line: InvoiceLine
    tick: forms.BoundField
    amount: forms.BoundField
    approved: Decimal | None = None
    refusal: str | None = None


class CreditNoteForm(LinePickerMixin, forms.Form):
    """Tick lines and give amounts without tax; the engine decides what is allowed."""

    dispute_reason = forms.ModelChoiceField(queryset=DisputeReason.objects.none(),
                                            label="Dispute reason")
    payment = forms.ModelChoiceField(
        queryset=Payment.objects.none(), required=False, label="Refund to",
        empty_label="Latest payment first",
        help_text="Only used for the part beyond the balance due.",
    )
    remarks = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                              max_length=1000)

    def __init__(self, *args, invoice, lines, preselect=None, approved=None, **kwargs):
        """`approved`: {line id: amount without tax} of the approved request being carried
        out, when it proposed lines; only those lines can be credited, each up to its amount."""
        super().__init__(*args, **kwargs)
        self.approved = approved or {}
        # "Invoice cancelled" is what cancellation credit notes carry, never a refund's reason
        self.fields["dispute_reason"].queryset = DisputeReason.objects.filter(
            is_active=True).exclude(name=CANCELLATION_REASON)
        self.fields["payment"].queryset = invoice.payments.select_related("method").filter(
            amount_refunded__lt=F("amount"))
        self.fields["payment"].label_from_instance = lambda p: (
            f"{p.method.name} {invoice.money(p.refundable)} left "
            f"({p.received_at:%d %b %Y}{', ' + p.reference if p.reference else ''})")
        self.add_line_fields(lines=lines, currency=invoice.currency, preselect=preselect)

    def credit_rows(self) -> list[CreditRow]:
        """The lines with what the approval allows on each, said before anything is tried (the
        breakdown and the credit note refuse the same with the same sentence)."""
        if not self.approved:
            return [CreditRow(line, tick, amount) for line, tick, amount in self.rows()]
        return [CreditRow(line, tick, amount, approved=self.approved.get(line.pk),
                          refusal=None if line.pk in self.approved
                          else LINE_NOT_APPROVED.format(line=line))
                for line, tick, amount in self.rows()]


class CancelForm(forms.Form):
    remarks = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000,
                              label="Why is the invoice cancelled?")



class CreditNoteFilterForm(forms.Form):
    """The credit-note list's search and kind (the page draws its own inputs)."""

    q = forms.CharField(required=False, max_length=100)
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *CreditNoteKind.choices])
