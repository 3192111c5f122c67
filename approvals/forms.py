"""The shape of the input on the Financial Approval screens. Whether remarks are required, which
lines and amounts may be proposed and who may decide is the services' business: their messages
are the ones staff see."""

from django import forms

from billing.forms import LinePickerMixin
from billing.models import CANCELLATION_REASON, DisputeReason

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
    remarks = _remarks_field(label="Remarks (required)", required=True,
                             placeholder="Why should this invoice be cancelled?")


class RefundRequestForm(LinePickerMixin, forms.Form):
    """The dispute reason (the clinic's approval rules may depend on it), remarks, and
    optionally the lines to refund with amounts without tax. No line ticked asks for the whole
    refund."""

    amount_widget_attrs = {"class": "form-control form-control-sm money"}
    dispute_reason = forms.ModelChoiceField(
        queryset=DisputeReason.objects.none(), required=False, label="Dispute reason",
        empty_label="Not known yet",
        help_text="Some of the clinic's approval rules depend on it (for example, a duplicate "
                  "charge may always need an approver).")
    remarks = _remarks_field(label="Remarks (required)", required=True,
                             placeholder="Why should this invoice be refunded?")

    def __init__(self, *args, invoice, lines, preselect=None, **kwargs):
        super().__init__(*args, **kwargs)
        # "Invoice cancelled" is what cancellation credit notes carry, never a refund's reason
        self.fields["dispute_reason"].queryset = DisputeReason.objects.filter(
            is_active=True).exclude(name=CANCELLATION_REASON)
        self.add_line_fields(lines=lines, currency=invoice.currency, preselect=preselect)

    def proposed_lines(self):
        """The ticked lines, or None when no line is ticked (the whole refund)."""
        return self.chosen_lines() or None


class ApproveForm(forms.Form):
    remarks = _remarks_field(label="Remarks (optional)", rows=2)


class RejectForm(forms.Form):
    remarks = _remarks_field(label="Why is it rejected?", rows=2, required=True)
