"""Creating and issuing invoices: lines and totals, gapless numbers, refusals, the admin button."""

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEvent
from billing import access
from billing.models import Invoice, InvoiceLine, InvoiceStatus, NumberSeries
from billing.services import (
    ACCOUNT_INACTIVE,
    ACCOUNT_OF_OTHER_CLINIC,
    ALREADY_ISSUED,
    ISSUE_ZERO_TOTAL,
    LINE_NO_DESCRIPTION,
    LINE_PRICE_NEGATIVE,
    LINE_PRICE_PLACES,
    LINE_QUANTITY,
    LINE_SERVICE,
    LINE_TAX_RATE,
    NO_LINES,
    LineInput,
    invoice_create,
    invoice_issue,
)

from .factories import (
    AccountFactory,
    ServiceFactory,
    TaxRateFactory,
    UserFactory,
)

D = Decimal


def line(description="Consultation", quantity="1", price="10.000", tax_rate=None, **kwargs):
    return LineInput(description=description, quantity=D(quantity), unit_price=D(price),
                     tax_rate=tax_rate, **kwargs)


def events(invoice, action):
    return list(AuditEvent.objects.filter(invoice_id=invoice.pk, action=action))


# -- invoice_create ------------------------------------------------------------------------------

def test_it_creates_a_draft_with_its_lines_totals_and_an_audit_event(clinic, account, vat, clerk):
    # given two lines from the worked example (docs/rules.md §1.4)
    lines = [line("Consultation", "2", "10.000", vat), line("Dressing", "1", "7.333", vat)]

    # when the clerk creates the invoice
    invoice = invoice_create(clinic=clinic, account=account, lines=lines, actor=clerk,
                             notes="  Follow-up in two weeks  ",
                             due_date=datetime.date(2030, 1, 31))

    # then it is a numberless draft in the clinic's currency whose totals are the lines' sums
    invoice = Invoice.objects.get(pk=invoice.pk)
    assert invoice.status == InvoiceStatus.DRAFT
    assert invoice.number is None and invoice.sequence is None and invoice.issue_date is None
    assert invoice.currency == "OMR"
    assert invoice.created_by == clerk
    assert invoice.notes == "Follow-up in two weeks"
    assert invoice.due_date == datetime.date(2030, 1, 31)
    stored = list(invoice.lines.all())
    assert [(ln.position, ln.description, ln.quantity, ln.unit_price) for ln in stored] == [
        (1, "Consultation", D("2"), D("10.000")), (2, "Dressing", D("1"), D("7.333")),
    ]
    assert [(ln.net, ln.tax, ln.total) for ln in stored] == [
        (D("20.000"), D("1.000"), D("21.000")), (D("7.333"), D("0.367"), D("7.700")),
    ]
    assert all((ln.tax_rate, ln.tax_name, ln.tax_percentage) == (vat, "VAT 5%", D("5"))
               for ln in stored)
    assert (invoice.subtotal, invoice.tax_amount, invoice.total) == (
        D("27.333"), D("1.367"), D("28.700"))
    assert invoice.balance_due == D("28.700")
    # and the creation is audited
    [event] = AuditEvent.objects.all()
    assert event.action == Action.INVOICE_CREATED
    assert (event.actor, event.actor_username) == (clerk, "clerk")
    assert (event.clinic, event.invoice_id) == (clinic, invoice.pk)
    assert event.content_type == ContentType.objects.get_for_model(Invoice)
    assert event.object_id == str(invoice.pk)
    assert (event.from_state, event.to_state) == ("", "draft")
    assert (event.amount, event.currency) == (D("28.700"), "OMR")
    # no number was taken for a draft
    assert not NumberSeries.objects.exists()


def test_it_snapshots_the_tax_rate_so_later_changes_do_not_alter_the_line(make_invoice, vat):
    # given an invoice at 5 %
    invoice = make_invoice(issue=False)
    # when the rate is later changed
    vat.percentage = D("10")
    vat.save()
    # then the lines keep the rate they were billed at
    assert {ln.tax_percentage for ln in invoice.lines.all()} == {D("5")}
    invoice.refresh_from_db()
    assert invoice.tax_amount == D("1.367")


def test_it_bills_a_catalogue_service_at_its_price_and_tax_rate(clinic, account, clerk):
    # given a service of the clinic
    service = ServiceFactory(clinic=clinic, name="X-ray", unit_price=D("12.500"),
                             tax_rate=TaxRateFactory(clinic=clinic, name="VAT 15%",
                                                     percentage=D("15")))
    # when it is billed with only a quantity
    invoice = invoice_create(clinic=clinic, account=account, actor=clerk,
                             lines=[LineInput(quantity=D("2"), service=service)])
    # then its name, price and tax rate are used
    [ln] = invoice.lines.all()
    assert (ln.service, ln.description, ln.unit_price) == (service, "X-ray", D("12.500"))
    assert (ln.tax_name, ln.net, ln.tax, ln.total) == ("VAT 15%", D("25.000"), D("3.750"),
                                                      D("28.750"))
    assert invoice.total == D("28.750")


def test_it_creates_and_issues_at_once(make_invoice):
    invoice = make_invoice(issue=True)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.number == "INV-MUSCAT-000001"
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == [
        Action.INVOICE_CREATED, Action.INVOICE_ISSUED]


def test_create_refuses_an_account_of_another_clinic(clinic, other_clinic, vat, clerk, refused):
    foreign = AccountFactory(clinic=other_clinic)
    with refused(ACCOUNT_OF_OTHER_CLINIC):
        invoice_create(clinic=clinic, account=foreign, lines=[line(tax_rate=vat)], actor=clerk)


def test_create_refuses_a_closed_account(clinic, account, vat, clerk, refused):
    account.is_active = False
    account.save()
    with refused(ACCOUNT_INACTIVE.format(account=account)):
        invoice_create(clinic=clinic, account=account, lines=[line(tax_rate=vat)], actor=clerk)


def test_create_refuses_no_lines(clinic, account, clerk, refused):
    with refused(NO_LINES):
        invoice_create(clinic=clinic, account=account, lines=[], actor=clerk)


@pytest.mark.parametrize("description", ["", "   "])
def test_create_refuses_a_blank_description(clinic, account, vat, clerk, refused, description):
    # the message names the offending line
    lines = [line(tax_rate=vat), line(description, tax_rate=vat)]
    with refused(LINE_NO_DESCRIPTION.format(n=2)):
        invoice_create(clinic=clinic, account=account, lines=lines, actor=clerk)


@pytest.mark.parametrize("quantity", [D("0"), D("-1"), D("1.0005"), D("NaN"), D("Infinity"), 1.5])
def test_create_refuses_a_bad_quantity(clinic, account, vat, clerk, refused, quantity):
    spec = LineInput(description="Consultation", quantity=quantity, unit_price=D("10.000"),
                     tax_rate=vat)
    with refused(LINE_QUANTITY.format(n=1)):
        invoice_create(clinic=clinic, account=account, lines=[spec], actor=clerk)


def test_create_accepts_a_quantity_with_three_decimals(clinic, account, vat, clerk):
    invoice = invoice_create(clinic=clinic, account=account, actor=clerk,
                             lines=[line(quantity="1.235", price="10.000", tax_rate=vat)])
    assert invoice.subtotal == D("12.350")


def test_create_refuses_a_negative_price(clinic, account, vat, clerk, refused):
    with refused(LINE_PRICE_NEGATIVE.format(n=1)):
        invoice_create(clinic=clinic, account=account, actor=clerk,
                       lines=[line(price="-0.001", tax_rate=vat)])


def test_create_refuses_a_missing_price(clinic, account, vat, clerk, refused):
    spec = LineInput(description="Consultation", quantity=D("1"), tax_rate=vat)
    with refused(LINE_PRICE_NEGATIVE.format(n=1)):
        invoice_create(clinic=clinic, account=account, lines=[spec], actor=clerk)


def test_create_refuses_a_price_with_more_places_than_the_currency(
        clinic, account, vat, clerk, refused):
    with refused(LINE_PRICE_PLACES.format(n=1, currency="OMR", places=3)):
        invoice_create(clinic=clinic, account=account, actor=clerk,
                       lines=[line(price="10.0005", tax_rate=vat)])


def test_create_refuses_a_tax_rate_of_another_clinic(
        clinic, other_clinic, account, clerk, refused):
    foreign_rate = TaxRateFactory(clinic=other_clinic, name="Sales tax", percentage=D("8.25"))
    with refused(LINE_TAX_RATE.format(n=1)):
        invoice_create(clinic=clinic, account=account, actor=clerk,
                       lines=[line(tax_rate=foreign_rate)])


def test_create_refuses_a_line_without_tax_rate(clinic, account, clerk, refused):
    with refused(LINE_TAX_RATE.format(n=1)):
        invoice_create(clinic=clinic, account=account, actor=clerk, lines=[line(tax_rate=None)])


def test_create_refuses_a_service_of_another_clinic(clinic, other_clinic, account, clerk, refused):
    foreign_service = ServiceFactory(clinic=other_clinic)
    with refused(LINE_SERVICE.format(n=1)):
        invoice_create(clinic=clinic, account=account, actor=clerk,
                       lines=[LineInput(quantity=D("1"), service=foreign_service)])


def test_create_refuses_a_user_who_is_not_a_member(clinic, account, vat, outsider, refused):
    with refused(access.NOT_A_MEMBER.format(clinic="Muscat Clinic")):
        invoice_create(clinic=clinic, account=account, lines=[line(tax_rate=vat)],
                       actor=outsider)


def test_create_refuses_a_member_without_permission(clinic, account, vat, refused):
    member_without_role = UserFactory(username="newcomer", clinics=[clinic])
    with refused(access.NO_PERMISSION.format(action="create invoices")):
        invoice_create(clinic=clinic, account=account, lines=[line(tax_rate=vat)],
                       actor=member_without_role)


def test_create_refuses_an_approver(clinic, account, vat, approver, refused):
    with refused(access.NO_PERMISSION.format(action="create invoices")):
        invoice_create(clinic=clinic, account=account, lines=[line(tax_rate=vat)],
                       actor=approver)


def test_create_checks_every_line_before_writing_anything(clinic, account, vat, clerk, refused):
    # a bad third line leaves no invoice and no lines behind
    lines = [line(tax_rate=vat), line(tax_rate=vat), line(quantity="0", tax_rate=vat)]
    with refused(LINE_QUANTITY.format(n=3)):
        invoice_create(clinic=clinic, account=account, lines=lines, actor=clerk)
    assert not InvoiceLine.objects.exists()


# -- invoice_issue -------------------------------------------------------------------------------

def test_it_issues_a_draft_with_the_next_number_and_an_audit_event(make_invoice, clinic, clerk):
    # given a draft
    draft = make_invoice(issue=False)
    # when it is issued
    issued = invoice_issue(invoice=draft, actor=clerk)
    # then it has the first number of the clinic, today's date in the clinic's time zone
    issued = Invoice.objects.get(pk=draft.pk)
    assert issued.status == InvoiceStatus.ISSUED
    assert issued.number == "INV-MUSCAT-000001"
    assert issued.sequence == 1
    today = timezone.now().astimezone(zoneinfo.ZoneInfo("Asia/Muscat")).date()
    assert issued.issue_date == today
    assert str(issued) == "Invoice INV-MUSCAT-000001"
    assert NumberSeries.objects.get(clinic=clinic, kind="invoice").last_value == 1
    # and the transition is audited
    [event] = events(issued, Action.INVOICE_ISSUED)
    assert (event.from_state, event.to_state) == ("draft", "issued")
    assert (event.actor, event.clinic) == (clerk, clinic)
    assert (event.amount, event.currency) == (D("28.700"), "OMR")
    assert event.data == {"number": "INV-MUSCAT-000001"}


def test_it_issues_with_a_given_issue_date(make_invoice, clerk):
    draft = make_invoice(issue=False)
    issued = invoice_issue(invoice=draft, actor=clerk, issue_date=datetime.date(2030, 2, 1))
    assert Invoice.objects.get(pk=issued.pk).issue_date == datetime.date(2030, 2, 1)


def test_it_numbers_invoices_gaplessly_per_clinic(
        make_invoice, clerk, clinic, other_clinic, outsider):
    # given drafts in two clinics
    muscat = [make_invoice(issue=False) for _ in range(3)]
    austin_account = AccountFactory(clinic=other_clinic)
    austin_rate = TaxRateFactory(clinic=other_clinic, name="Sales tax", percentage=D("8.25"))
    austin = [make_invoice([("1", "100.00")], issue=False, tax_rate=austin_rate,
                           inv_clinic=other_clinic, inv_account=austin_account, actor=outsider)
              for _ in range(2)]

    # when they are issued interleaved
    for draft in (muscat[0], austin[0], muscat[1], austin[1], muscat[2]):
        invoice_issue(invoice=draft, actor=outsider if draft.clinic == other_clinic else clerk)

    # then each clinic counts 1, 2, 3 on its own
    got = {inv.pk: (inv.sequence, inv.number) for inv in Invoice.objects.all()}
    assert [got[d.pk] for d in muscat] == [
        (1, "INV-MUSCAT-000001"), (2, "INV-MUSCAT-000002"), (3, "INV-MUSCAT-000003")]
    assert [got[d.pk] for d in austin] == [(1, "INV-AUSTIN-000001"), (2, "INV-AUSTIN-000002")]


def test_issue_refuses_an_invoice_already_issued(make_invoice, clerk, refused):
    invoice = make_invoice(issue=True)
    with refused(ALREADY_ISSUED.format(invoice="Invoice INV-MUSCAT-000001")):
        invoice_issue(invoice=invoice, actor=clerk)


def test_issue_refuses_a_zero_total(make_invoice, clerk, refused):
    draft = make_invoice([("1", "0.000")], issue=False)
    with refused(ISSUE_ZERO_TOTAL):
        invoice_issue(invoice=draft, actor=clerk)
    assert Invoice.objects.get(pk=draft.pk).status == InvoiceStatus.DRAFT


def test_issue_refuses_a_user_who_is_not_a_member(make_invoice, outsider, refused):
    draft = make_invoice(issue=False)
    with refused(access.NOT_A_MEMBER.format(clinic="Muscat Clinic")):
        invoice_issue(invoice=draft, actor=outsider)


def test_issue_refuses_an_approver(make_invoice, approver, refused):
    draft = make_invoice(issue=False)
    with refused(access.NO_PERMISSION.format(action="issue invoices")):
        invoice_issue(invoice=draft, actor=approver)


# -- the status field ----------------------------------------------------------------------------

def test_status_cannot_be_assigned_directly(make_invoice, pay):
    # given an issued invoice
    invoice = make_invoice(issue=True)
    # when someone assigns the status, then it is refused
    with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
        invoice.status = InvoiceStatus.PAID
    assert invoice.status == InvoiceStatus.ISSUED
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.ISSUED
    # and a fresh copy (as fetched from the database) is protected too
    fetched = Invoice.objects.get(pk=invoice.pk)
    with pytest.raises(AttributeError):
        fetched.status = InvoiceStatus.DRAFT


def test_refresh_from_db_still_reloads_the_status(make_invoice, pay):
    # given an invoice held in memory while a payment is recorded elsewhere
    invoice = make_invoice(issue=True)
    pay(invoice, "10.000")
    assert invoice.status == InvoiceStatus.ISSUED  # stale copy
    # when it is refreshed
    invoice.refresh_from_db()
    # then it shows the new state, and the field is protected again afterwards
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert invoice.amount_paid == D("10.000")
    with pytest.raises(AttributeError):
        invoice.status = InvoiceStatus.PAID


# -- the admin transition button -----------------------------------------------------------------

@pytest.fixture
def admin_user(clinic):
    user = User.objects.create_superuser("admin", "admin@clinic.test", "pw")
    clinic.members.add(user)
    return user


def admin_change_post_data(response, **fields):
    """The POST the admin change form would send: its inline management forms and the hidden
    ids of the inline rows, plus the given editable fields."""
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for form in formset.forms:
            for hidden in form.hidden_fields():
                value = hidden.value()
                data[hidden.html_name] = "" if value is None else value
    data.update(fields)
    return data


def test_admin_issue_button_issues_through_the_service(make_invoice, admin_user, client, clinic):
    # given a draft and a superuser who is a member of its clinic
    draft = make_invoice(issue=False)
    client.force_login(admin_user)
    url = reverse("admin:billing_invoice_change", args=[draft.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_fsm_transition_to"' in page.content

    # when the "Issue" transition button is pressed
    response = client.post(url, admin_change_post_data(
        page, due_date="2030-03-31", notes="Issued from the admin",
        _fsm_transition_to="issue"))

    # then the invoice is issued by the service: numbered, dated and audited
    assert response.status_code == 302
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.number == "INV-MUSCAT-000001"
    assert invoice.issue_date is not None
    assert invoice.due_date == datetime.date(2030, 3, 31)
    assert invoice.notes == "Issued from the admin"
    [event] = events(invoice, Action.INVOICE_ISSUED)
    assert (event.actor, event.clinic) == (admin_user, clinic)
    assert (event.from_state, event.to_state) == ("draft", "issued")
    assert event.client == "web"
    followed = client.get(response["Location"])
    assert "Invoice updated: issue." in [str(m) for m in followed.context["messages"]]


def test_admin_issue_button_shows_the_refusal(make_invoice, admin_user, client):
    # given a draft with a zero total
    draft = make_invoice([("1", "0.000")], issue=False)
    client.force_login(admin_user)
    url = reverse("admin:billing_invoice_change", args=[draft.pk])
    page = client.get(url)
    events_before = AuditEvent.objects.count()

    # when the "Issue" button is pressed
    response = client.post(url, admin_change_post_data(
        page, due_date="", notes="", _fsm_transition_to="issue"), follow=True)

    # then the service's message is shown and nothing was issued
    assert ISSUE_ZERO_TOTAL in [str(m) for m in response.context["messages"]]
    invoice = Invoice.objects.get(pk=draft.pk)
    assert (invoice.status, invoice.number) == (InvoiceStatus.DRAFT, None)
    assert AuditEvent.objects.count() == events_before
    assert not NumberSeries.objects.exists()
