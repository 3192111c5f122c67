from django import forms
from django.utils import timezone

from .models import InvoiceStatus, PaymentMethod


class InvoiceFilterForm(forms.Form):
    q = forms.CharField(
        required=False, label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Number, patient name or number"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *InvoiceStatus.choices])
    date_from = forms.DateField(required=False, label="Issued from",
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="Issued to",
                              widget=forms.DateInput(attrs={"type": "date"}))


class PaymentForm(forms.Form):
    method = forms.ModelChoiceField(queryset=PaymentMethod.objects.none(), label="Payment method")
    amount = forms.DecimalField(max_digits=14, decimal_places=3, min_value=0)
    reference = forms.CharField(required=False, max_length=100,
                                help_text="Receipt, cheque or transaction number.")
    received_at = forms.DateTimeField(
        initial=timezone.now, label="Received at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, invoice, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].queryset = PaymentMethod.objects.filter(
            clinic=invoice.clinic, is_active=True
        )
        self.fields["amount"].initial = invoice.balance_due
