"""The New invoice screen (Billing > New invoice) and issuing a draft from its page: an existing
or a new patient, lines from the catalogue or free lines, saved as a draft or issued. Every
refusal is the service's sentence, shown on the form, and nothing is created (docs/rules.md
§2.4)."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import Action, AuditEvent
from billing.access import NO_PERMISSION
from billing.models import Account, Invoice, InvoiceStatus
from billing.rules import ISSUE_ZERO_TOTAL
from billing.services import (
    ACCOUNT_NUMBER_TAKEN,
    LINE_PRICE_NEGATIVE,
    LINE_PRICE_PLACES,
    LINE_SERVICE,
    LINE_TAX_RATE,
    NO_LINES,
)
from desk.forms import CHOOSE_CLINIC, CHOOSE_PATIENT, PATIENT_NOT_IN_CLINIC

from .conftest import ledger_state
from .factories import (
    AccountFactory,
    ClinicFactory,
    ServiceFactory,
    TaxRateFactory,
    UserFactory,
    clerk_factory,
)

D = Decimal
NEW = reverse("desk:invoice_new")
ROWS = 3


def form_data(lines=(), *, action="issue", rows=ROWS, **fields):
    """The POST of the New invoice form: `lines` fill the first rows, the others stay empty
    (a quantity of 1, as the page offers them)."""
    data = {"lines-TOTAL_FORMS": str(max(rows, len(lines))), "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "100", "action": action,
            "patient": "existing", "account": "", "account_search": "", "new_name": "",
            "new_number": "", "new_email": "", "new_phone": "", "due_date": "", "notes": ""}
    for i in range(max(rows, len(lines))):
        line = {"service": "", "description": "", "quantity": "1", "unit_price": "",
                "tax_rate": "", **(lines[i] if i < len(lines) else {})}
        data.update({f"lines-{i}-{name}": value for name, value in line.items()})
    data.update(fields)
    return data


def free_line(description="Wound dressing", quantity="2", unit_price="4.125", tax_rate=None):
    return {"description": description, "quantity": quantity, "unit_price": unit_price,
            "tax_rate": tax_rate.pk if tax_rate else ""}


def problems(response) -> list[str]:
    return response.context["problems"]


def counts():
    return Invoice.objects.count(), Account.objects.count()


@pytest.fixture
def as_clerk(client, clerk):
    client.force_login(clerk)
    return client


@pytest.fixture
def consultation(clinic, vat):
    return ServiceFactory(clinic=clinic, code="GP-CONS", name="General consultation",
                          unit_price=D("15.000"), tax_rate=vat)


# -- the paths that make an invoice ----------------------------------------------------------------

def test_it_issues_an_invoice_with_a_catalogue_service_and_a_free_line(
    as_clerk, account, consultation, vat, clerk
):
    # given an existing patient, a service of the catalogue and a free line
    data = form_data([{"service": consultation.pk, "quantity": "1"}, free_line(tax_rate=vat)],
                     account=account.pk, notes="Seen on Tuesday", due_date="2030-01-31")

    # when the clerk presses Issue invoice
    response = as_clerk.post(NEW, data, follow=True)

    # then the invoice is issued with the catalogue's price and tax and the typed line
    invoice = Invoice.objects.get()
    assert response.redirect_chain == [(reverse("desk:invoice_detail", args=[invoice.pk]), 302)]
    assert (invoice.status, invoice.number) == (InvoiceStatus.ISSUED, "INV-MUSCAT-000001")
    assert invoice.account == account
    assert (invoice.notes, str(invoice.due_date)) == ("Seen on Tuesday", "2030-01-31")
    first, second = invoice.lines.order_by("position")
    assert (first.service, first.description, first.unit_price, first.tax_rate) == (
        consultation, "General consultation", D("15.000"), vat)
    assert (first.net, first.tax, first.total) == (D("15.000"), D("0.750"), D("15.750"))
    assert (second.service, second.description, second.quantity) == (
        None, "Wound dressing", D("2"))
    assert (second.net, second.tax, second.total) == (D("8.250"), D("0.413"), D("8.663"))
    assert invoice.total == D("24.413")
    assert "Invoice INV-MUSCAT-000001 issued." in [str(m) for m in response.context["messages"]]
    actions = list(AuditEvent.objects.filter(invoice=invoice).order_by("pk")
                   .values_list("action", "actor"))
    assert actions == [(Action.INVOICE_CREATED, clerk.pk), (Action.INVOICE_ISSUED, clerk.pk)]


def test_it_saves_a_draft(as_clerk, account, vat):
    response = as_clerk.post(NEW, form_data([free_line(tax_rate=vat)], action="draft",
                                            account=account.pk), follow=True)

    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.number, invoice.total) == (
        InvoiceStatus.DRAFT, None, D("8.663"))
    assert "Draft saved." in [str(m) for m in response.context["messages"]]
    assert response.context["invoice"] == invoice


def test_a_catalogue_line_may_change_the_description_and_price(
    as_clerk, account, consultation
):
    as_clerk.post(NEW, form_data([{"service": consultation.pk, "quantity": "2",
                                   "description": "Consultation (evening)",
                                   "unit_price": "20.000"}], account=account.pk))

    line = Invoice.objects.get().lines.get()
    assert (line.service, line.description, line.unit_price, line.tax_rate) == (
        consultation, "Consultation (evening)", D("20.000"), consultation.tax_rate)
    assert line.total == D("42.000")


def test_it_creates_a_new_patient_with_the_invoice(as_clerk, clinic, vat, clerk):
    response = as_clerk.post(NEW, form_data(
        [free_line(tax_rate=vat)], patient="new", new_name="Omar Al-Harthy",
        new_number="P00777", new_email="omar@example.com", new_phone="+968 9000 0000"))

    assert response.status_code == 302
    patient = Account.objects.get(number="P00777")
    assert (patient.clinic, patient.name, patient.email, patient.phone) == (
        clinic, "Omar Al-Harthy", "omar@example.com", "+968 9000 0000")
    assert Invoice.objects.get().account == patient
    assert AuditEvent.objects.filter(action=Action.ACCOUNT_CREATED, actor=clerk).count() == 1


def test_a_refused_invoice_creates_no_new_patient(as_clerk, vat):
    before = (counts(), ledger_state())

    # a free line without a tax rate: the invoice is refused after the account was made
    response = as_clerk.post(NEW, form_data(
        [free_line(tax_rate=None)], patient="new", new_name="Omar Al-Harthy",
        new_number="P00777"))

    assert response.status_code == 200
    assert problems(response) == [LINE_TAX_RATE.format(n=1)]
    assert (counts(), ledger_state()) == before
    assert not AuditEvent.objects.filter(action=Action.ACCOUNT_CREATED).exists()


# -- refusals: the service's sentence on the form, nothing created -------------------------------

@pytest.fixture
def foreign(other_clinic):
    """A tax rate and a service of another clinic, which a forged POST might name."""
    rate = TaxRateFactory(clinic=other_clinic, name="Sales tax 5%", percentage=D("5"))
    return {"tax_rate": rate, "service": ServiceFactory(clinic=other_clinic, tax_rate=rate,
                                                        unit_price=D("10.00"))}


@pytest.mark.parametrize(("case", "expected"), [
    ("no lines", NO_LINES),
    ("negative price", LINE_PRICE_NEGATIVE.format(n=1)),
    ("too many decimals", LINE_PRICE_PLACES.format(n=1, currency="OMR", places=3)),
    ("service of another clinic", LINE_SERVICE.format(n=1)),
    ("tax rate of another clinic", LINE_TAX_RATE.format(n=1)),
    ("second line wrong", LINE_PRICE_NEGATIVE.format(n=2)),
])
def test_a_refused_invoice_shows_the_reason_and_creates_nothing(
    as_clerk, account, vat, foreign, case, expected
):
    lines = {
        "no lines": [],
        "negative price": [free_line(unit_price="-1.000", tax_rate=vat)],
        "too many decimals": [free_line(unit_price="1.2345", tax_rate=vat)],
        "service of another clinic": [{"service": foreign["service"].pk}],
        "tax rate of another clinic": [free_line(tax_rate=foreign["tax_rate"])],
        "second line wrong": [free_line(tax_rate=vat), free_line(unit_price="-2", tax_rate=vat)],
    }[case]
    before = (counts(), ledger_state())

    response = as_clerk.post(NEW, form_data(lines, account=account.pk))

    assert response.status_code == 200
    assert problems(response) == [expected]
    assert expected in response.content.decode()
    assert (counts(), ledger_state()) == before


def test_a_duplicate_patient_number_is_refused(as_clerk, account, vat):
    before = (counts(), ledger_state())

    response = as_clerk.post(NEW, form_data([free_line(tax_rate=vat)], patient="new",
                                            new_name="Another Aisha", new_number="P00001"))

    assert problems(response) == [ACCOUNT_NUMBER_TAKEN.format(clinic="Muscat Clinic",
                                                              number="P00001")]
    assert (counts(), ledger_state()) == before


def test_no_patient_chosen_is_refused(as_clerk, vat):
    response = as_clerk.post(NEW, form_data([free_line(tax_rate=vat)]))

    assert problems(response) == [CHOOSE_PATIENT]
    assert counts() == (0, 0)


def test_a_patient_of_a_clinic_not_mine_is_refused(client, outsider, other_clinic, account):
    # the outsider bills from their own clinic, naming our patient in a forged POST
    rate = TaxRateFactory(clinic=other_clinic, name="Sales tax", percentage=D("5"))
    client.force_login(outsider)
    before = (counts(), ledger_state())

    response = client.post(NEW, form_data([free_line(unit_price="4.00", tax_rate=rate)],
                                          account=account.pk))

    assert problems(response) == [PATIENT_NOT_IN_CLINIC.format(clinic="Austin Clinic")]
    assert (counts(), ledger_state()) == before


def test_lines_are_numbered_as_the_page_shows_them(as_clerk, account, vat):
    # given a line typed in the third row, under two empty rows
    data = form_data([{}, {}, free_line(unit_price="-1", tax_rate=vat)], account=account.pk)

    response = as_clerk.post(NEW, data)

    # then the refusal names line 1, and the page shows that line first
    assert problems(response) == [LINE_PRICE_NEGATIVE.format(n=1)]
    first_row = response.context["lines"].forms[0]
    assert first_row["unit_price"].value() == "-1"
    assert first_row["description"].value() == "Wound dressing"


def test_a_line_the_form_cannot_read_is_named_by_its_number(as_clerk, account, vat):
    data = form_data([free_line(tax_rate=vat), free_line(quantity="two", tax_rate=vat)],
                     account=account.pk)

    response = as_clerk.post(NEW, data)

    assert problems(response) == ["Line 2: enter the quantity with digits and a point, e.g. 2 "
                                  "or 1.5."]
    assert counts() == (0, 1)


def test_after_a_refusal_every_entered_value_is_shown_again(as_clerk, vat, consultation):
    data = form_data([{"service": consultation.pk, "quantity": "3"},
                      free_line(description="Bandages", unit_price="-4.500", tax_rate=vat)],
                     patient="new", new_name="Omar Al-Harthy", new_number="P00777",
                     new_email="omar@example.com", new_phone="99001122",
                     due_date="2030-02-01", notes="Bring the referral")

    page = as_clerk.post(NEW, data).content.decode()

    for shown in ('value="Omar Al-Harthy"', 'value="P00777"', 'value="omar@example.com"',
                  'value="99001122"', 'value="2030-02-01"', "Bring the referral",
                  'value="Bandages"', 'value="-4.500"', 'value="3"',
                  f'<option value="{consultation.pk}" selected>',
                  f'<option value="{vat.pk}" selected>',
                  'value="new" id="id_patient_1" checked'):
        assert shown in page, shown


# -- finding the patient ---------------------------------------------------------------------------

def test_find_patient_lists_the_matches_and_creates_nothing(as_clerk, clinic, account, vat):
    AccountFactory(clinic=clinic, name="Said Al-Balushi", number="P00002")
    AccountFactory(clinic=clinic, name="Huda Al-Kindi", number="P00003")
    AccountFactory(clinic=ClinicFactory(code="SOHAR"), name="Ali Al-Balushi", number="S1")

    response = as_clerk.post(NEW, form_data([free_line(tax_rate=vat)], action="find",
                                            account_search="balushi"))

    assert response.status_code == 200
    assert [a.name for a in response.context["candidates"]] == [
        "Aisha Al-Balushi", "Said Al-Balushi"]
    assert response.context["selected"] is None
    assert problems(response) == []
    assert counts() == (0, 4)
    assert 'value="Wound dressing"' in response.content.decode()  # the lines are kept


def test_find_patient_by_number_chooses_the_one_found(as_clerk, account, vat):
    response = as_clerk.post(NEW, form_data([], action="find", account_search="p00001"))

    assert response.context["candidates"] == [account]
    assert f'value="{account.pk}" id="account-{account.pk}" checked' in (
        response.content.decode())


def test_a_patients_page_preselects_them(as_clerk, account):
    response = as_clerk.get(NEW, {"account": account.pk})

    assert response.context["selected"] == account
    assert f'value="{account.pk}" id="account-{account.pk}" checked' in (
        response.content.decode())


def test_another_clinics_patient_cannot_be_preselected(as_clerk, other_clinic):
    stranger = AccountFactory(clinic=other_clinic)

    assert as_clerk.get(NEW, {"account": stranger.pk}).status_code == 404
    assert as_clerk.get(NEW, {"account": "x"}).status_code == 404


# -- the clinic ------------------------------------------------------------------------------------

@pytest.fixture
def two_clinic_clerk(clinic, other_clinic, roles):
    return clerk_factory(username="both", clinics=[clinic, other_clinic])


def test_staff_of_several_clinics_choose_the_clinic_first(client, two_clinic_clerk, clinic,
                                                         other_clinic, consultation):
    client.force_login(two_clinic_clerk)

    chooser = client.get(NEW)
    assert chooser.templates[0].name == "desk/invoice_clinic.html"
    assert [c.pk for c in chooser.context["form"].clinics] == [other_clinic.pk, clinic.pk]

    form = client.get(NEW, {"clinic": clinic.pk})
    assert form.context["clinic"] == clinic
    assert f'<option value="{consultation.pk}">' in form.content.decode()
    assert f'name="clinic" value="{clinic.pk}"' in form.content.decode()


def test_a_clinic_not_mine_is_refused(client, clerk, other_clinic, account, vat):
    client.force_login(clerk)

    response = client.post(NEW, form_data([free_line(tax_rate=vat)], account=account.pk,
                                          clinic=other_clinic.pk))

    assert response.context["form"].errors == {"clinic": [CHOOSE_CLINIC]}
    assert CHOOSE_CLINIC in response.content.decode()
    assert counts() == (0, 1)


def test_staff_of_one_clinic_bill_from_it_without_choosing(as_clerk, clinic):
    response = as_clerk.get(NEW)

    assert response.context["clinic"] == clinic
    assert "Choose another clinic" not in response.content.decode()


# -- who may -------------------------------------------------------------------------------------

def billing_menu(client) -> str:
    page = client.get(reverse("home")).content.decode()
    return page[page.index('<ul class="dropdown-menu">'):page.index("Financial Approval")]


def test_an_approver_may_not_create_invoices(client, approver, account, vat):
    client.force_login(approver)

    assert client.get(NEW).status_code == 403
    assert client.post(NEW, form_data([free_line(tax_rate=vat)],
                                      account=account.pk)).status_code == 403
    assert counts() == (0, 1)
    assert "New invoice" not in billing_menu(client)
    assert "Patients" in billing_menu(client)


def test_the_clerk_finds_new_invoice_in_the_menu(as_clerk):
    assert f'href="{NEW}">New invoice</a>' in billing_menu(as_clerk)


@pytest.fixture
def invoicer(clinic, roles):
    """Staff who may create invoices but neither add patients nor issue."""
    user = UserFactory(username="invoicer", clinics=[clinic])
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="billing", codename__in=["add_invoice", "view_invoice"]))
    return user


def test_without_the_permission_to_add_patients_only_existing_ones_are_billed(
    client, invoicer, vat
):
    client.force_login(invoicer)
    page = client.get(NEW).content.decode()
    assert "A new patient" not in page
    assert 'name="new_name"' not in page

    response = client.post(NEW, form_data([free_line(tax_rate=vat)], action="draft",
                                          patient="new", new_name="Omar", new_number="P9"))

    assert problems(response) == [NO_PERMISSION.format(action="create accounts")]
    assert counts() == (0, 0)


def test_without_the_permission_to_issue_only_drafts_are_saved(client, invoicer, account, vat):
    client.force_login(invoicer)
    assert 'value="issue"' not in client.get(NEW).content.decode()

    refused = client.post(NEW, form_data([free_line(tax_rate=vat)], account=account.pk))
    assert problems(refused) == [NO_PERMISSION.format(action="issue invoices")]
    assert counts() == (0, 1)

    client.post(NEW, form_data([free_line(tax_rate=vat)], action="draft", account=account.pk))
    assert Invoice.objects.get().status == InvoiceStatus.DRAFT


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(NEW)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# -- the page itself -------------------------------------------------------------------------------

class Labels(HTMLParser):
    """The ids of the form's inputs, and the ids its labels are for."""

    def __init__(self):
        super().__init__()
        self.inputs, self.labelled = [], set()
        self.in_template = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "template":
            self.in_template = True
        if tag == "label" and attrs.get("for"):
            self.labelled.add(attrs["for"])
        skipped = ("hidden", "submit", "button")
        if tag in ("input", "select", "textarea") and attrs.get("type") not in skipped:
            self.inputs.append(attrs.get("id") or attrs.get("name"))

    def handle_endtag(self, tag):
        if tag == "template":
            self.in_template = False


def test_every_input_has_its_label(as_clerk, account, consultation):
    page = as_clerk.get(NEW, {"account": account.pk}).content.decode()
    form = page[page.index("<form method=\"post\" action"):]
    parser = Labels()
    parser.feed(form)

    assert len(parser.inputs) > 20
    assert [name for name in parser.inputs if name not in parser.labelled] == []


def test_the_required_fields_are_marked(as_clerk):
    page = as_clerk.get(NEW).content.decode()

    for label in ("Name", "Patient number", "Quantity"):
        assert f'{label}<span class="asteriskField">*</span>' in page, label


def test_add_line_copies_the_empty_row_from_a_script_file(as_clerk):
    page = as_clerk.get(NEW).content.decode()

    assert '<template id="invoice-line-template">' in page
    assert 'name="lines-__prefix__-description"' in page
    assert 'data-action="add-line"' in page
    assert '<script src="/static/js/invoice_new.js"></script>' in page
    assert "<script>" not in page  # no inline script: the policy allows 'self' only


def test_the_page_costs_the_same_with_one_line_or_six(as_clerk, account, vat, consultation):
    def statements(lines):
        with CaptureQueriesContext(connection) as captured:
            response = as_clerk.post(NEW, form_data(lines, action="draft", account=account.pk))
        assert response.status_code == 302
        return len(captured.captured_queries)

    one = statements([{"service": consultation.pk}])
    six = statements([{"service": consultation.pk}, free_line(tax_rate=vat)] * 3)
    assert six == one


# -- issuing a draft from its page -----------------------------------------------------------------

def issue_url(invoice):
    return reverse("desk:invoice_issue", args=[invoice.pk])


def draft_menu(client, invoice) -> dict[str, str | None]:
    page = client.get(reverse("desk:invoice_detail", args=[invoice.pk]))
    return {action.label: action.refusal for action in page.context["actions"]}


def test_a_draft_is_issued_from_its_page(as_clerk, make_invoice, clerk):
    draft = make_invoice(issue=False)
    assert draft_menu(as_clerk, draft) == {"Issue invoice": None, "Discard draft": None}

    response = as_clerk.post(issue_url(draft), follow=True)

    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.ISSUED, "INV-MUSCAT-000001")
    assert "Invoice INV-MUSCAT-000001 issued." in [str(m) for m in response.context["messages"]]
    assert AuditEvent.objects.filter(invoice=draft, action=Action.INVOICE_ISSUED,
                                     actor=clerk).count() == 1


def test_a_draft_of_zero_is_offered_disabled_and_refused(as_clerk, make_invoice):
    draft = make_invoice([("1", "0.000")], issue=False)
    assert draft_menu(as_clerk, draft)["Issue invoice"] == ISSUE_ZERO_TOTAL
    before = ledger_state()

    response = as_clerk.post(issue_url(draft), follow=True)

    assert ISSUE_ZERO_TOTAL in [str(m) for m in response.context["messages"]]
    assert ledger_state() == before


def test_an_approver_cannot_issue_a_draft(client, approver, make_invoice):
    draft = make_invoice(issue=False)
    client.force_login(approver)
    assert draft_menu(client, draft) == {}
    before = ledger_state()

    response = client.post(issue_url(draft), follow=True)

    assert NO_PERMISSION.format(action="issue invoices") in [
        str(m) for m in response.context["messages"]]
    assert ledger_state() == before


def test_another_clinics_draft_is_not_found(client, outsider, make_invoice):
    draft = make_invoice(issue=False)
    client.force_login(outsider)
    before = ledger_state()

    assert client.post(issue_url(draft)).status_code == 404
    assert ledger_state() == before


def test_issuing_is_a_post(as_clerk, make_invoice):
    draft = make_invoice(issue=False)
    assert as_clerk.get(issue_url(draft)).status_code == 405
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT


TAMPERED = "The lines did not arrive whole: open New invoice again and enter them again."


@pytest.mark.parametrize(("total", "expected"), [
    ("abc", TAMPERED),
    ("", TAMPERED),
    ("1000", "An invoice has at most 100 lines: split it into several invoices."),
    ("-1", NO_LINES),
])
def test_a_tampered_line_count_is_refused_plainly(as_clerk, account, vat, total, expected):
    data = form_data([free_line(tax_rate=vat)], account=account.pk)
    data["lines-TOTAL_FORMS"] = total

    response = as_clerk.post(NEW, data)

    assert response.status_code == 200
    assert problems(response) == [expected]
    assert counts() == (0, 1)
