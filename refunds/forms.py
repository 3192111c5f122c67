from django import forms
from django.db.models import F

from billing.forms import AmountField
from billing.models import DisputeReason, Payment
from billing.money import quantum

from .models import CreditNoteKind


class LinePickerMixin:
    """A tick box and an amount without tax for each invoice line (the amount defaults to what
    remains on the line). The refund engine decides what is allowed."""

    amount_widget_attrs: dict = {}

    def add_line_fields(self, *, lines, currency: str, preselect: dict | None = None) -> None:
        """`preselect`: {line id: amount} ticked and filled in on first display."""
        self.invoice_lines = list(lines)
        preselect = preselect or {}
        for line in self.invoice_lines:
            self.fields[f"line_{line.pk}"] = forms.BooleanField(
                required=False, initial=line.pk in preselect, label=line.description,
                widget=forms.CheckboxInput(attrs={"class": "form-check-input"}))
            self.fields[f"amount_{line.pk}"] = AmountField(
                required=False, currency=currency, label="Amount without tax",
                initial=preselect.get(line.pk, line.creditable_net).quantize(quantum(currency)),
                widget=forms.TextInput(attrs=self.amount_widget_attrs),
            )

    def rows(self):
        """(line, tick field, amount field) for the template."""
        return [(line, self[f"line_{line.pk}"], self[f"amount_{line.pk}"])
                for line in self.invoice_lines]

    def chosen_lines(self):
        """[(line, amount without tax or None for all that remains)] for the ticked lines."""
        return [(line, self.cleaned_data.get(f"amount_{line.pk}"))
                for line in self.invoice_lines if self.cleaned_data.get(f"line_{line.pk}")]


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

    def __init__(self, *args, invoice, lines, preselect=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dispute_reason"].queryset = DisputeReason.objects.filter(is_active=True)
        self.fields["payment"].queryset = invoice.payments.select_related("method").filter(
            amount_refunded__lt=F("amount"))
        self.fields["payment"].label_from_instance = lambda p: (
            f"{p.method.name} {invoice.money(p.refundable)} left "
            f"({p.received_at:%d %b %Y}{', ' + p.reference if p.reference else ''})")
        self.add_line_fields(lines=lines, currency=invoice.currency, preselect=preselect)


class CancelForm(forms.Form):
    remarks = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000,
                              label="Why is the invoice cancelled?")



class CreditNoteFilterForm(forms.Form):
    """The credit-note list's search and kind (the page draws its own inputs)."""

    q = forms.CharField(required=False, max_length=100)
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *CreditNoteKind.choices])
