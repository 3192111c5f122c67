from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import InvoiceStatus, PaymentMethod
from .money import AmountError, parse_amount


class AmountField(forms.CharField):
    """An amount read exactly as typed (billing.money.parse_amount), or its plain message.

    Django's DecimalField hands the text to Decimal(), which also reads spaces, underscores,
    exponents and other scripts' digits: "1_0" would be ten."""

    def __init__(self, *, currency: str | None = None, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)
        self.currency = currency

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "inputmode": "decimal", "autocomplete": "off"}

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_amount(value, currency=self.currency)
        except AmountError as error:
            raise ValidationError(error.message, code="invalid") from None


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
    amount = AmountField()
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
        self.fields["amount"].currency = invoice.currency
