"""The screens, as the three personas see them: clerk, approver (no payments), outsider."""

from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import Action
from billing import access
from billing.models import Invoice, InvoiceStatus
from billing.services import OVERPAYMENT, LineInput, invoice_create

from .conftest import ledger_state
from .factories import AccountFactory, clerk_factory, set_policy

D = Decimal

HOME = reverse("home")
LIST = reverse("desk:invoice_list")
LOGIN = reverse("login")


def detail_url(invoice):
    return reverse("desk:invoice_detail", args=[invoice.pk])


def payment_url(invoice):
    return reverse("billing:payment_create", args=[invoice.pk])


def listed(response):
    return [invoice.pk for invoice in response.context["page"].object_list]


@pytest.fixture
def as_clerk(client, clerk):
    client.force_login(clerk)
    return client


# -- logging in ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_login_page_renders(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content


@pytest.mark.django_db
def test_a_user_logs_in_with_a_password(client, clerk):
    response = client.post(LOGIN, {"username": "clerk", "password": "pw"})
    assert response.status_code == 302
    assert response["Location"] == HOME


@pytest.mark.django_db
@pytest.mark.parametrize("url", [HOME, LIST, "/billing/invoices/1/",
                                 "/billing/invoices/1/payments/new/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={url}"


# -- the clerk -----------------------------------------------------------------------------------

def test_the_clerk_sees_home_with_the_open_invoice(as_clerk, make_invoice):
    invoice = make_invoice(issue=True)
    response = as_clerk.get(HOME)
    assert response.status_code == 200
    assert "Home" in response.content.decode()
    assert list(response.context["open_invoices"]) == [invoice]
    assert response.context["open_count"].value == 1
    assert "INV-MUSCAT-000001" in response.content.decode()
    assert "Muscat Clinic" in response.content.decode()


def test_the_clerk_sees_their_invoice_in_the_list_and_its_page(as_clerk, make_invoice):
    invoice = make_invoice(issue=True)
    response = as_clerk.get(LIST)
    assert response.status_code == 200
    assert listed(response) == [invoice.pk]
    page = response.content.decode()
    assert "INV-MUSCAT-000001" in page
    assert "Aisha Al-Balushi" in page
    assert "28.700 OMR" in page

    detail = as_clerk.get(detail_url(invoice))
    assert detail.status_code == 200
    assert detail.context["invoice"] == invoice
    assert [e.action for e in detail.context["history"]] == [Action.INVOICE_ISSUED,
                                                             Action.INVOICE_CREATED]


def test_a_user_without_clinics_sees_an_empty_home(client, roles):
    client.force_login(clerk_factory(username="lonely"))
    response = client.get(HOME)
    assert response.status_code == 200
    assert "You are not a member of any clinic yet" in response.content.decode()


# -- the outsider --------------------------------------------------------------------------------

def test_the_outsider_cannot_see_the_clinics_invoice(client, outsider, make_invoice):
    # given an invoice of the Muscat clinic and a clerk of the Austin clinic
    invoice = make_invoice(issue=True)
    client.force_login(outsider)
    # then its page and its payment page do not exist for them
    assert client.get(detail_url(invoice)).status_code == 404
    assert client.get(payment_url(invoice)).status_code == 404
    # and the list and home do not show it, even when searched for
    assert listed(client.get(LIST)) == []
    assert listed(client.get(LIST, {"q": "INV-MUSCAT-000001"})) == []
    home = client.get(HOME)
    assert list(home.context["open_invoices"]) == []
    assert "INV-MUSCAT-000001" not in home.content.decode()


def test_the_outsider_cannot_post_a_payment_on_the_clinics_invoice(
        client, outsider, make_invoice, cash):
    invoice = make_invoice(issue=True)
    client.force_login(outsider)
    before = ledger_state()
    response = client.post(payment_url(invoice), {
        "method": cash.pk, "amount": "1.000", "received_at": "2030-01-02T09:30"})
    assert response.status_code == 404
    assert ledger_state() == before


def test_an_unknown_invoice_is_not_found(as_clerk):
    assert as_clerk.get("/billing/invoices/999999/").status_code == 404


# -- searching and paging ------------------------------------------------------------------------

@pytest.fixture
def three_invoices(make_invoice, clinic, pay):
    """INV-…01 for Aisha (paid), INV-…02 for Omar (issued), a draft for Omar."""
    omar = AccountFactory(clinic=clinic, name="Omar Al-Harthy", number="P00002")
    first = make_invoice()
    pay(first, "28.700")
    second = make_invoice(inv_account=omar)
    draft = make_invoice(issue=False, inv_account=omar)
    return first, second, draft


def test_the_list_searches_by_number(as_clerk, three_invoices):
    first, second, _ = three_invoices
    assert listed(as_clerk.get(LIST, {"q": "INV-MUSCAT-000002"})) == [second.pk]
    assert listed(as_clerk.get(LIST, {"q": "000001"})) == [first.pk]


def test_the_list_searches_by_patient_name_and_number(as_clerk, three_invoices):
    first, second, draft = three_invoices
    assert set(listed(as_clerk.get(LIST, {"q": "omar"}))) == {second.pk, draft.pk}
    assert listed(as_clerk.get(LIST, {"q": "Aisha"})) == [first.pk]
    assert set(listed(as_clerk.get(LIST, {"q": "P00002"}))) == {second.pk, draft.pk}
    empty = as_clerk.get(LIST, {"q": "nobody"})
    assert listed(empty) == []
    assert "No invoice matches" in empty.content.decode()


def test_an_exact_number_finds_just_that_invoice_not_its_neighbours(as_clerk, three_invoices):
    # given INV-MUSCAT-000001 and INV-MUSCAT-000002: as a fragment, "INV-MUSCAT-00000" is in both
    first, _, _ = three_invoices
    assert len(listed(as_clerk.get(LIST, {"q": "INV-MUSCAT-00000"}))) == 2
    # then the whole number, in capitals or not, finds that invoice alone
    assert listed(as_clerk.get(LIST, {"q": "inv-muscat-000001"})) == [first.pk]
    # and a whole patient number finds that patient's invoices alone
    assert listed(as_clerk.get(LIST, {"q": "P00001"})) == [first.pk]


def test_a_search_shorter_than_3_characters_finds_whole_numbers_only(
        as_clerk, three_invoices, clinic, vat, clerk):
    # given a patient whose number is two characters long, and patients named "Omar"
    patient = AccountFactory(clinic=clinic, name="Om Kalthoum", number="P7")
    invoice = invoice_create(clinic=clinic, account=patient, actor=clerk, lines=[LineInput(
        description="Visit", quantity=D("1"), unit_price=D("1.000"), tax_rate=vat)])
    # when the clerk searches for "Om": no fragment search, and the page says why
    response = as_clerk.get(LIST, {"q": "Om"})
    assert listed(response) == []
    assert ("Shorter than 3 characters, a search finds whole invoice or patient numbers only"
            in response.content.decode())
    # but a whole number of two characters is found
    assert listed(as_clerk.get(LIST, {"q": "p7"})) == [invoice.pk]
    # and from 3 characters names are searched
    assert len(listed(as_clerk.get(LIST, {"q": "Oma"}))) == 2


def test_a_search_counts_at_most_200_matches(as_clerk, three_invoices, monkeypatch):
    # given a search that matches all 3 invoices (numbers and patient numbers hold "000"),
    # counted at most to 2
    monkeypatch.setattr("desk.views.SEARCH_COUNT_CAP", 2)
    monkeypatch.setattr("desk.views.PAGE_SIZE", 1)
    response = as_clerk.get(LIST, {"q": "000"})
    # then the list says there are more than 2 and pages through the newest 2
    assert "Page 1 of 2 · more than 2 invoices" in response.content.decode()


@pytest.mark.parametrize(("status", "expected"), [
    (InvoiceStatus.PAID, [0]), (InvoiceStatus.ISSUED, [1]), (InvoiceStatus.DRAFT, [2]),
    (InvoiceStatus.CANCELLED, []), ("", [0, 1, 2]),
])
def test_the_list_filters_by_status(as_clerk, three_invoices, status, expected):
    response = as_clerk.get(LIST, {"status": status})
    assert sorted(listed(response)) == sorted(three_invoices[i].pk for i in expected)


def test_the_list_combines_search_and_status(as_clerk, three_invoices):
    _, second, _ = three_invoices
    assert listed(as_clerk.get(LIST, {"q": "Omar", "status": "issued"})) == [second.pk]


def test_the_list_pages_by_25(as_clerk, clinic, account, vat, clerk):
    # given 30 drafts
    for n in range(30):
        invoice_create(clinic=clinic, account=account, actor=clerk, lines=[LineInput(
            description=f"Visit {n}", quantity=D("1"), unit_price=D("1.000"), tax_rate=vat)])
    # when the second page is asked for
    first = as_clerk.get(LIST)
    second = as_clerk.get(LIST, {"page": "2"})
    # then it holds the last 5, and the two pages together hold all 30 once
    assert second.status_code == 200
    assert second.context["page"].number == 2
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5
    assert sorted(listed(first) + listed(second)) == sorted(
        Invoice.objects.values_list("pk", flat=True))
    assert "Page 2 of 2 · 30 invoices" in second.content.decode()
    assert "page=2" in first.content.decode()


def test_the_list_never_counts_past_its_cap(as_clerk, clinic, account, vat, clerk,
                                            monkeypatch):
    # given 7 invoices, a list that counts at most 5 rows and shows 2 a page
    monkeypatch.setattr("billing.pagination.LIST_COUNT_CAP", 5)
    monkeypatch.setattr("desk.views.PAGE_SIZE", 2)
    for n in range(7):
        invoice_create(clinic=clinic, account=account, actor=clerk, lines=[LineInput(
            description=f"Visit {n}", quantity=D("1"), unit_price=D("1.000"), tax_rate=vat)])
    # when the clerk opens the list, then its last page
    first = as_clerk.get(LIST)
    last = as_clerk.get(LIST, {"page": "3"})
    # then it says there are more than 5, lists the newest 5 and says how to reach older ones
    assert "Page 1 of 3 · more than 5 invoices" in first.content.decode()
    assert len(listed(first) + listed(as_clerk.get(LIST, {"page": "2"})) + listed(last)) == 5
    assert not last.context["page"].has_next()
    assert ("Only the newest 5 invoices are listed: narrow the search or the dates to see older"
            in last.content.decode())
    assert "Only the newest" not in first.content.decode()


def test_the_list_keeps_the_filters_in_the_page_links(as_clerk, make_invoice):
    for _ in range(26):
        make_invoice([("1", "1.000")], issue=False)
    response = as_clerk.get(LIST, {"status": "draft"})
    assert 'href="?status=draft&page=2"' in response.content.decode()


# -- recording a payment -------------------------------------------------------------------------

def payment_data(cash, amount, **extra):
    return {"method": cash.pk, "amount": amount, "reference": "R-77",
            "received_at": "2030-01-02T09:30", **extra}


def test_the_payment_form_shows_the_balance_due(as_clerk, make_invoice, cash):
    invoice = make_invoice(issue=True)
    response = as_clerk.get(payment_url(invoice))
    assert response.status_code == 200
    assert response.context["form"]["amount"].value() == D("28.700")
    assert "28.700 OMR" in response.content.decode()
    assert list(response.context["form"].fields["method"].queryset) == [cash]


def test_the_payment_form_offers_the_balance_in_the_currencys_places(client, outsider,
                                                                     other_invoice):
    client.force_login(outsider)
    page = client.get(payment_url(other_invoice)).content.decode()
    # USD: two places, not the three the column keeps
    assert f'value="{other_invoice.balance_due:.2f}"' in page


def test_the_clerk_records_a_payment_through_the_form(as_clerk, make_invoice, cash, clerk):
    # given an issued invoice of 28.700 OMR
    invoice = make_invoice(issue=True)
    # when the clerk posts a payment of 10.000
    response = as_clerk.post(payment_url(invoice), payment_data(cash, "10.000"))
    # then it is recorded and they are sent back to the invoice with a confirmation
    assert response.status_code == 302
    assert response["Location"] == detail_url(invoice)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PARTIALLY_PAID, D("10.000"))
    [payment] = invoice.payments.all()
    assert (payment.amount, payment.reference, payment.recorded_by) == (
        D("10.000"), "R-77", clerk)
    assert invoice.audit_events.filter(action=Action.PAYMENT_RECORDED).count() == 1
    page = as_clerk.get(response["Location"])
    assert "Payment of 10.000 OMR recorded." in [str(m) for m in page.context["messages"]]


def test_an_overpayment_is_refused_on_the_form(as_clerk, make_invoice, cash):
    # given an issued invoice of 28.700 OMR
    invoice = make_invoice(issue=True)
    before = ledger_state()
    # when the clerk posts 28.701
    response = as_clerk.post(payment_url(invoice), payment_data(cash, "28.701"))
    # then the form comes back with the service's plain message and nothing is written
    message = OVERPAYMENT.format(amount="28.701 OMR", balance="28.700 OMR")
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [message]
    assert message in response.content.decode()
    assert ledger_state() == before


def test_an_approver_cannot_record_a_payment(client, approver, make_invoice, cash):
    # given an approver, who may see the clinic's invoices but not record payments
    invoice = make_invoice(issue=True)
    client.force_login(approver)
    assert client.get(detail_url(invoice)).status_code == 200
    before = ledger_state()
    # when they post a payment
    response = client.post(payment_url(invoice), payment_data(cash, "1.000"))
    # then they are told why, and nothing is written
    message = access.NO_PERMISSION.format(action="record payments")
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [message]
    assert message in response.content.decode()
    assert ledger_state() == before


def test_an_invalid_form_writes_nothing(as_clerk, make_invoice, cash):
    invoice = make_invoice(issue=True)
    before = ledger_state()
    response = as_clerk.post(payment_url(invoice), payment_data(cash, "0.0001"))
    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert ledger_state() == before


def test_home_shows_what_needs_the_users_attention(client, clinic, clerk, approver, make_invoice,
                                                   pay):
    from approvals.services import refund_request_create, request_reject
    from refunds.services import credit_note_create

    from .factories import DisputeReasonFactory

    set_policy(clinic, refund="approval")
    clinic.save()
    waiting = make_invoice()
    refund_request_create(invoice=waiting, remarks="Charged twice", actor=clerk)
    turned_down = make_invoice()
    rejected = refund_request_create(invoice=turned_down, remarks="Unhappy", actor=clerk)
    request_reject(financial_request=rejected, actor=approver, remarks="Service was given")
    set_policy(clinic, refund="direct")
    clinic.save()
    paid = make_invoice()
    pay(paid, "28.700")
    credit_note_create(full=True, invoice=paid, dispute_reason=DisputeReasonFactory(), actor=clerk)

    client.force_login(approver)
    page = client.get("/")
    assert [r.invoice for r in page.context["awaiting"]] == [waiting]

    client.force_login(clerk)
    page = client.get("/")
    assert list(page.context["awaiting"]) == []  # clerks decide nothing
    assert [r.pk for r in page.context["my_decided"]] == [rejected.pk]
    html = page.content.decode()
    assert "Service was given" in html
    assert "pay 28.700 OMR back by cash" in html
