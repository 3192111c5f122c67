"""The shape of the input on the Financial Approval screens. Whether remarks are required, which
lines and amounts may be proposed and who may decide is the services' business: their messages
are the ones staff see."""

from django import forms
from django.core.exceptions import ValidationError

from billing.forms import NOT_YOUR_CLINIC, LinePickerMixin
from billing.models import CANCELLATION_REASON, Clinic, DisputeReason
from billing.selectors import clinics_for_user

from .models import REMARKS_MAX_LENGTH, RequestKind, RequestStatus
from .selectors import DEFAULT_SORT, REQUEST_SORTS


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
    """The queue's filters and order. The clinic is one of the user's own (another id is
    refused with NOT_YOUR_CLINIC, as on the invoice list); the page shows that choice only to
    staff of several clinics."""

    q = forms.CharField(
        required=False, label="Invoice number",
        widget=forms.TextInput(attrs={"placeholder": "e.g. INV-MUSCAT-000012"}),
    )
    status = forms.ChoiceField(required=False,
                               choices=[("", "Any status"), *RequestStatus.choices])
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *RequestKind.choices],
                             widget=forms.Select(attrs={"class": "form-select"}))
    clinic = forms.ModelChoiceField(
        queryset=Clinic.objects.none(), required=False, empty_label="All my clinics",
        error_messages={"invalid_choice": NOT_YOUR_CLINIC},
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    date_from = forms.DateField(required=False, label="Requested from",
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="Requested to",
                              widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(
        required=False, label="Order",
        choices=[(value, label) for value, (label, _) in REQUEST_SORTS.items()],
        widget=forms.Select(attrs={"class": "form-select"}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        clinics = clinics_for_user(user=user).order_by("name", "pk")
        self.fields["clinic"].queryset = clinics
        self.several_clinics = clinics.count() > 1

    def filters(self) -> dict:
        """What request_search is asked, from the fields that are valid: a field refused (a
        clinic not the user's, a date that is not one) is left out and shown as an error, and
        the queue keeps to the user's own clinics."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        clinic = data.get("clinic")
        return {
            "status": data.get("status") or "",
            "kind": data.get("kind") or "",
            "clinic_id": clinic.pk if clinic else None,
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
            "search": data.get("q") or "",
            "sort": data.get("sort") or DEFAULT_SORT,
        }


NOTHING_SELECTED = "Select at least one request: tick the box at the start of its row."
NOT_A_REQUEST = "That selection does not name a request. Reload the queue and select again."
TOO_MANY_SELECTED = "Select at most {limit} requests at a time."
BULK_REJECT_REMARKS = (
    "Say why the selected requests are rejected: the remarks are given to each of them."
)
CHOOSE_DECISION = "Choose Approve selected or Reject selected."
BULK_LIMIT = 100


class BulkDecisionForm(forms.Form):
    """The requests ticked on the queue, approve or reject, and one remark for all of them
    (a rejection needs it). Who may decide which request is the service's business."""

    request = forms.Field(required=False, widget=forms.MultipleHiddenInput)
    decision = forms.ChoiceField(
        choices=[("approve", "Approve selected"), ("reject", "Reject selected")],
        error_messages={"required": CHOOSE_DECISION, "invalid_choice": CHOOSE_DECISION})
    remarks = _remarks_field(label="Remarks for the selected requests (required to reject)",
                             rows=2)

    def clean_request(self):
        values = self.cleaned_data.get("request") or []
        if not values:
            raise ValidationError(NOTHING_SELECTED)
        if len(values) > BULK_LIMIT:
            raise ValidationError(TOO_MANY_SELECTED.format(limit=BULK_LIMIT))
        ids = []
        for value in values:
            text = str(value).strip()
            if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
                raise ValidationError(NOT_A_REQUEST)
            ids.append(int(text))
        return ids

    def clean(self):
        cleaned = super().clean()
        # one remark for many requests: asked for once here, rather than refused once per
        # request by the service (which refuses a rejection without remarks all the same)
        if cleaned.get("decision") == "reject" and not (cleaned.get("remarks") or "").strip():
            self.add_error("remarks", BULK_REJECT_REMARKS)
        return cleaned

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == "approve"


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
