"""The shape of the input on the Financial Approval screens. Whether remarks are required, which
lines and amounts may be proposed and who may decide is the services' business: their messages
are the ones staff see."""

from django import forms

from .models import REMARKS_MAX_LENGTH, RequestStatus


def _remarks_field(*, label: str, rows: int = 3, placeholder: str = "", required: bool = False):
    # required=False on purpose: the service refuses blank remarks with its own plain message;
    # the HTML attribute only spares staff a round trip.
    attrs = {"rows": rows, "maxlength": REMARKS_MAX_LENGTH}
    if placeholder:
        attrs["placeholder"] = placeholder
    if required:
        attrs["required"] = True
    return forms.CharField(required=False, label=label,
                           widget=forms.Textarea(attrs=attrs))


class RequestFilterForm(forms.Form):
    q = forms.CharField(
        required=False, label="Invoice number",
        widget=forms.TextInput(attrs={"placeholder": "e.g. INV-MUSCAT-000012"}),
    )
    status = forms.ChoiceField(required=False,
                               choices=[("", "Any status"), *RequestStatus.choices])
    date_from = forms.DateField(required=False, label="Requested from",
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="Requested to",
                              widget=forms.DateInput(attrs={"type": "date"}))


class CancellationRequestForm(forms.Form):
    remarks = _remarks_field(label="Remarks", required=True,
                             placeholder="Why should this invoice be cancelled?")


class RefundRequestForm(forms.Form):
    """Remarks, and optionally the lines to refund with amounts without tax. No line ticked
    asks for the whole refund."""

    remarks = _remarks_field(label="Remarks", required=True,
                             placeholder="Why should this invoice be refunded?")

    def __init__(self, *args, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice_lines = list(lines)
        for line in self.invoice_lines:
            self.fields[f"line_{line.pk}"] = forms.BooleanField(
                required=False, label=line.description,
                widget=forms.CheckboxInput(attrs={"class": "form-check-input"}))
            self.fields[f"amount_{line.pk}"] = forms.DecimalField(
                required=False, max_digits=14, decimal_places=3, label="Amount without tax",
                initial=line.creditable_net,
                widget=forms.NumberInput(attrs={"class": "form-control form-control-sm money",
                                                "step": "any"}),
            )

    def rows(self):
        """(line, tick field, amount field) for the template."""
        return [(line, self[f"line_{line.pk}"], self[f"amount_{line.pk}"])
                for line in self.invoice_lines]

    def proposed_lines(self):
        """[(line, amount without tax or None for all that remains)] for the ticked lines, or
        None when no line is ticked."""
        chosen = [(line, self.cleaned_data.get(f"amount_{line.pk}"))
                  for line in self.invoice_lines if self.cleaned_data.get(f"line_{line.pk}")]
        return chosen or None


class ApproveForm(forms.Form):
    remarks = _remarks_field(label="Remarks (optional)", rows=2)


class RejectForm(forms.Form):
    remarks = _remarks_field(label="Why is it rejected?", rows=2, required=True)
