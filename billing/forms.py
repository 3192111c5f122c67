from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from .breakdown import LINE_NOT_ON_INVOICE, LINE_NOTHING_LEFT, CreditLineInput
from .models import Clinic, InvoiceStatus, PaymentMethod
from .money import AmountError, parse_amount, quantum
from .selectors import clinics_for_user


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

    def chosen_lines(self) -> list[CreditLineInput]:
        """The ticked lines, each with its amount without tax (None: all that remains)."""
        return [CreditLineInput(line, self.cleaned_data.get(f"amount_{line.pk}"))
                for line in self.invoice_lines if self.cleaned_data.get(f"line_{line.pk}")]


def lines_asked_for(*, invoice, lines, query) -> tuple[dict, str | None]:
    """The lines a link asks to tick (`?line=<id>`, from Refund this line / Credit this line):
    ({line id: all that remains on it}, None), or ({}, the plain reason) when a value names no
    line of this invoice or a line with nothing left to credit. No `line`: ({}, None)."""
    by_id = {str(line.pk): line for line in lines}
    asked: dict = {}
    for value in query.getlist("line"):
        line = by_id.get(value.strip())
        if line is None:
            return {}, LINE_NOT_ON_INVOICE.format(invoice=invoice)
        if line.creditable_net <= 0:
            return {}, LINE_NOTHING_LEFT.format(line=line)
        asked[line.pk] = line.creditable_net
    return asked, None


NOT_YOUR_CLINIC = "Choose one of your clinics, or All my clinics."


class InvoiceFilterForm(forms.Form):
    """The invoice list's search and filters. The clinic is one of the user's own (another id
    is refused with NOT_YOUR_CLINIC); the page shows that choice only to staff of several."""

    q = forms.CharField(
        required=False, label="Search",
        widget=forms.TextInput(attrs={"type": "search", "class": "form-control",
                                      "placeholder": "Number, patient name or number"}),
    )
    clinic = forms.ModelChoiceField(
        queryset=Clinic.objects.none(), required=False, empty_label="All my clinics",
        error_messages={"invalid_choice": NOT_YOUR_CLINIC},
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *InvoiceStatus.choices],
                               widget=forms.Select(attrs={"class": "form-select"}))
    date_from = forms.DateField(required=False, label="Issued from",
                                widget=forms.DateInput(attrs={"type": "date",
                                                              "class": "form-control"}))
    date_to = forms.DateField(required=False, label="Issued to",
                              widget=forms.DateInput(attrs={"type": "date",
                                                            "class": "form-control"}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        clinics = clinics_for_user(user=user).order_by("name", "pk")
        self.fields["clinic"].queryset = clinics
        self.several_clinics = clinics.count() > 1


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
        # in the currency's own places: the column keeps three, so 231.00 USD would read 231.000
        self.fields["amount"].initial = invoice.balance_due.quantize(quantum(invoice.currency))
        self.fields["amount"].currency = invoice.currency
