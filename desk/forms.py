"""The billing office's forms for the New invoice screen and the Patients list: the shape of what
staff type. Whether it may be billed is the services' to decide, with their own sentences."""

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from billing.forms import AmountField
from billing.models import Account, Clinic
from billing.money import AMOUNT_NOT_A_NUMBER, AmountError, format_money, parse_amount
from billing.selectors import clinics_for_user
from billing.services import LINE_SERVICE, LINE_TAX_RATE, LineInput

EXISTING, NEW = "existing", "new"
PATIENT_CHOICES = [(EXISTING, "An existing patient"), (NEW, "A new patient")]

CHOOSE_CLINIC = "Choose one of your clinics."
CHOOSE_PATIENT = "Choose the patient: find them by name or number, or add a new patient."
PATIENT_NOT_IN_CLINIC = "That patient is not an account of {clinic}: find them again."
QUANTITY_MISSING = "Enter a quantity."
QUANTITY_NOT_A_NUMBER = "Enter the quantity with digits and a point, e.g. 2 or 1.5."
QUANTITY_TOO_LARGE = "Enter a quantity below 10,000,000."

# Rows a New invoice form may send: more than a clinic bills at once, few enough to read quickly.
MAX_LINES = 100
EMPTY_ROWS = 3
LINES_PREFIX = "lines"


def object_pk(value) -> int | None:
    """The row id a form sends, or None for anything that is not one (int() would also read
    " 12", "1_2" and other scripts' digits)."""
    text = str(value or "")
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    return int(text) or None


class StyledForm(forms.Form):
    """Bootstrap's classes on the inputs, and `is-invalid` on those with an error."""

    small = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.RadioSelect | forms.HiddenInput):
                continue
            base = "form-select" if isinstance(widget, forms.Select) else "form-control"
            widget.attrs["class"] = f"{base} {base}-sm" if self.small else base

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields and "class" in self.fields[name].widget.attrs:
                self.fields[name].widget.attrs["class"] += " is-invalid"


class ObjectChoiceField(forms.ChoiceField):
    """A choice among objects read once for the whole form, so a form of many lines costs one
    query for its services and one for its tax rates. Cleans to the object, or None."""

    def __init__(self, *, empty_label: str = "", **kwargs):
        super().__init__(**kwargs)
        self.empty_label = empty_label
        self.by_key: dict[str, object] = {}

    def set_objects(self, objects, label_of=str) -> None:
        self.by_key = {str(obj.pk): obj for obj in objects}
        self.choices = [("", self.empty_label),
                        *((key, label_of(obj)) for key, obj in self.by_key.items())]

    def clean(self, value):
        value = super().clean(value)
        return self.by_key.get(value) if value else None


class ClinicChoiceForm(forms.Form):
    """Which clinic bills: asked only of staff of several clinics."""

    clinic = ObjectChoiceField(label="Clinic", empty_label="Choose a clinic",
                               error_messages={"required": CHOOSE_CLINIC,
                                               "invalid_choice": CHOOSE_CLINIC})

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinics = list(clinics_for_user(user=user))
        self.fields["clinic"].set_objects(self.clinics, lambda c: f"{c.name} ({c.currency})")

    def chosen(self) -> Clinic | None:
        """The clinic the request names (none if it is not one of mine), else my only clinic,
        else None: the page asks."""
        if self.is_bound:
            return self.cleaned_data["clinic"] if self.is_valid() else None
        return self.clinics[0] if len(self.clinics) == 1 else None


class InvoiceForm(StyledForm):
    """Who is billed (an existing account of the clinic, or a new patient's details), when it
    is due and the notes. The lines are the LineFormSet."""

    patient = forms.TypedChoiceField(
        choices=PATIENT_CHOICES, required=False, empty_value=EXISTING, initial=EXISTING,
        label="Patient", widget=forms.RadioSelect)
    account_search = forms.CharField(
        required=False, max_length=200, label="Find a patient",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off",
                                      "placeholder": "Name or patient number"}))
    account = forms.CharField(required=False)  # the chosen account's id, resolved in clean()
    new_name = forms.CharField(required=False, label="Name",
                               widget=forms.TextInput(attrs={"maxlength": 200,
                                                             "autocomplete": "off"}))
    new_number = forms.CharField(required=False, label="Patient number",
                                 widget=forms.TextInput(attrs={"maxlength": 30,
                                                               "autocomplete": "off"}))
    new_email = forms.CharField(required=False, label="Email",
                                widget=forms.EmailInput(attrs={"maxlength": 254,
                                                               "autocomplete": "off"}))
    new_phone = forms.CharField(required=False, label="Phone",
                                widget=forms.TextInput(attrs={"type": "tel", "maxlength": 40,
                                                              "autocomplete": "off"}))
    due_date = forms.DateField(required=False, label="Due date",
                               widget=forms.DateInput(attrs={"type": "date"},
                                                      format="%Y-%m-%d"))
    notes = forms.CharField(required=False, label="Notes",
                            widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, clinic: Clinic, can_add_patient: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.can_add_patient = can_add_patient  # offered only then; the service says why not

    @property
    def patient_choice(self) -> str:
        """The option to show chosen: a new patient only when asked for."""
        return NEW if self.is_bound and self.data.get("patient") == NEW else EXISTING

    def selected_account(self) -> Account | None:
        """The account of this clinic the form names (sent, or preselected), if any."""
        if not hasattr(self, "_selected"):
            value = self.data.get("account") if self.is_bound else self.initial.get("account")
            pk = object_pk(value)
            self._selected = (Account.objects.filter(clinic=self.clinic, pk=pk).first()
                              if pk else None)
        return self._selected

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("patient") == NEW:
            cleaned["account"] = None
            return cleaned
        if not self.data.get("account"):
            raise ValidationError(CHOOSE_PATIENT)
        account = self.selected_account()
        if account is None:
            raise ValidationError(PATIENT_NOT_IN_CLINIC.format(clinic=self.clinic.name))
        cleaned["account"] = account
        return cleaned


class QuantityField(forms.CharField):
    """A quantity read exactly as typed; the service says what quantities it bills."""

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "inputmode": "decimal", "autocomplete": "off"}

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_amount(value, places=None, refuse_negative=False)
        except AmountError as error:
            message = (QUANTITY_NOT_A_NUMBER if error.message == AMOUNT_NOT_A_NUMBER
                       else QUANTITY_TOO_LARGE)
            raise ValidationError(message, code="invalid") from None


class PriceField(AmountField):
    """A unit price read exactly as typed. Whether it is below zero or has more decimals than
    the currency is the service's to say, naming the line."""

    def to_python(self, value):
        value = forms.CharField.to_python(self, value)
        if value in self.empty_values:
            return None
        try:
            return parse_amount(value, currency=self.currency, places=None,
                                refuse_negative=False)
        except AmountError as error:
            raise ValidationError(error.message, code="invalid") from None


# What makes a row a line: a quantity or a tax rate alone is what an empty row starts with.
ENTERED = ("service", "description", "unit_price")


class LineForm(StyledForm):
    """One line: a service of the clinic's catalogue (its description, price and tax rate unless
    typed), or a free line with a description, quantity, unit price and tax rate."""

    small = True

    service = ObjectChoiceField(required=False, label="Service", empty_label="Free line")
    description = forms.CharField(required=False, label="Description",
                                  widget=forms.TextInput(attrs={"maxlength": 300}))
    quantity = QuantityField(label="Quantity", initial="1",
                             error_messages={"required": QUANTITY_MISSING})
    unit_price = PriceField(required=False, label="Unit price")
    tax_rate = ObjectChoiceField(required=False, label="Tax rate", empty_label="—")

    def __init__(self, *args, number, currency, services, tax_rates, **kwargs):
        super().__init__(*args, **kwargs)
        self.number = number
        self.fields["service"].set_objects(
            services, lambda s: f"{s.name} · {format_money(s.unit_price, currency)}")
        self.fields["tax_rate"].set_objects(tax_rates)
        self.fields["unit_price"].currency = currency
        if isinstance(number, int):  # a choice the form did not offer: the service's sentence
            self.fields["service"].error_messages["invalid_choice"] = LINE_SERVICE.format(
                n=number)
            self.fields["tax_rate"].error_messages["invalid_choice"] = LINE_TAX_RATE.format(
                n=number)

    def has_changed(self):
        """A row holds a line once it names a service, a description or a price."""
        return any((self.data.get(self.add_prefix(name)) or "").strip() for name in ENTERED)

    def line_input(self) -> LineInput:
        data = self.cleaned_data
        return LineInput(quantity=data["quantity"], description=data["description"],
                         unit_price=data["unit_price"], tax_rate=data["tax_rate"],
                         service=data["service"])


class BaseLineFormSet(forms.BaseFormSet):
    default_error_messages = {
        "missing_management_form": (
            "The lines did not arrive whole: open New invoice again and enter them again."),
        "too_many_forms": "An invoice has at most %(num)d lines: split it into several invoices.",
    }

    def __init__(self, *args, clinic: Clinic, services, tax_rates, **kwargs):
        self.line_kwargs = {"currency": clinic.currency, "services": services,
                            "tax_rates": tax_rates}
        super().__init__(*args, prefix=LINES_PREFIX, **kwargs)

    def get_form_kwargs(self, index):
        # rows are numbered from 1, as the page shows them and the service names them
        return {**self.line_kwargs, "number": "__number__" if index is None else index + 1}

    def line_inputs(self) -> list[LineInput]:
        return [form.line_input() for form in self.forms if form.has_changed()]


LineFormSet = forms.formset_factory(
    LineForm, formset=BaseLineFormSet, extra=EMPTY_ROWS, max_num=MAX_LINES, validate_max=True,
    absolute_max=MAX_LINES)


def lines_in_order(data: QueryDict) -> QueryDict:
    """The sent rows with every row that holds a line first, in their order, and the empty ones
    after: the service numbers the lines it is given 1, 2, 3…, and so does the page."""
    try:
        total = min(int(data.get(f"{LINES_PREFIX}-TOTAL_FORMS", "")), MAX_LINES)
    except ValueError:
        return data  # the formset says the form was tampered with
    names = list(LineForm.base_fields)
    rows = [{name: data.getlist(f"{LINES_PREFIX}-{i}-{name}") for name in names}
            for i in range(total)]
    holds_a_line = [any(value.strip() for name in ENTERED for value in row[name])
                    for row in rows]
    order = sorted(range(total), key=lambda i: not holds_a_line[i])  # stable: keeps their order
    ordered = data.copy()
    for i, j in enumerate(order):
        for name in names:
            ordered.setlist(f"{LINES_PREFIX}-{i}-{name}", rows[j][name])
    return ordered


class PatientFilterForm(StyledForm):
    q = forms.CharField(
        required=False, max_length=200, label="Search",
        widget=forms.TextInput(attrs={"type": "search",
                                      "placeholder": "Patient name or number"}))
    clinic = ObjectChoiceField(required=False, label="Clinic", empty_label="All my clinics")

    def __init__(self, *args, clinics, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].set_objects(clinics, lambda c: c.name)
