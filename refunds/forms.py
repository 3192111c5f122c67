from django import forms
from django.db.models import F

from billing.models import DisputeReason, Payment
from billing.money import quantum


class CreditNoteForm(forms.Form):
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
        """`preselect`: {line id: amount} ticked and filled in on first display."""
        super().__init__(*args, **kwargs)
        self.invoice_lines = lines
        self.fields["dispute_reason"].queryset = DisputeReason.objects.filter(is_active=True)
        self.fields["payment"].queryset = invoice.payments.select_related("method").filter(
            amount_refunded__lt=F("amount"))
        self.fields["payment"].label_from_instance = lambda p: (
            f"{p.method.name} {invoice.money(p.refundable)} left "
            f"({p.received_at:%d %b %Y}{', ' + p.reference if p.reference else ''})")
        preselect = preselect or {}
        for line in lines:
            self.fields[f"line_{line.pk}"] = forms.BooleanField(
                required=False, initial=line.pk in preselect)
            self.fields[f"amount_{line.pk}"] = forms.DecimalField(
                required=False, max_digits=14, decimal_places=3,
                initial=preselect.get(line.pk, line.creditable_net).quantize(
                    quantum(invoice.currency)),
            )

    def rows(self):
        """(line, tick field, amount field) for the template."""
        return [(line, self[f"line_{line.pk}"], self[f"amount_{line.pk}"])
                for line in self.invoice_lines]

    def chosen_lines(self):
        """[(line, amount or None)] for the ticked lines."""
        return [(line, self.cleaned_data.get(f"amount_{line.pk}"))
                for line in self.invoice_lines if self.cleaned_data.get(f"line_{line.pk}")]


class CancelForm(forms.Form):
    remarks = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000,
                              label="Why is the invoice cancelled?")

