"""Billing > Patients: the accounts of my clinics, searched and paged, and a patient's page with
what they owe, their invoices and their credit notes. Another clinic's patient is not found."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.breakdown import CreditLineInput
from billing.services import LineInput, invoice_create
from refunds.services import credit_note_create

from .factories import AccountFactory, clerk_factory

D = Decimal
LIST = reverse("desk:patient_list")


def detail_url(account):
    return reverse("desk:patient_detail", args=[account.pk])


def listed(response):
    return [account.name for account in response.context["page"].object_list]


@pytest.fixture
def as_clerk(client, clerk):
    client.force_login(clerk)
    return client


@pytest.fixture
def patients(clinic, other_clinic, account):
    """Aisha (P00001) and two more of our clinic; John of another clinic."""
    AccountFactory(clinic=clinic, name="Said Al-Balushi", number="P00002")
    AccountFactory(clinic=clinic, name="Huda Al-Kindi", number="P00003", email="huda@example.com",
                   phone="+968 9111 2222")
    AccountFactory(clinic=other_clinic, name="John Doe", number="A00001")


# -- the list --------------------------------------------------------------------------------------

def test_the_list_shows_my_clinics_patients_by_name(as_clerk, patients):
    response = as_clerk.get(LIST)

    assert response.status_code == 200
    assert listed(response) == ["Aisha Al-Balushi", "Huda Al-Kindi", "Said Al-Balushi"]
    page = response.content.decode()
    assert "huda@example.com" in page and "+968 9111 2222" in page
    assert "John Doe" not in page


def test_the_outsider_sees_only_their_clinics_patients(client, outsider, patients):
    client.force_login(outsider)

    assert listed(client.get(LIST)) == ["John Doe"]


@pytest.mark.parametrize(("search", "expected"), [
    ("balushi", ["Aisha Al-Balushi", "Said Al-Balushi"]),
    ("P00003", ["Huda Al-Kindi"]),
    ("p00002", ["Said Al-Balushi"]),  # numbers are printed in capitals
    ("0000", ["Aisha Al-Balushi", "Huda Al-Kindi", "Said Al-Balushi"]),
    ("Al", []),  # shorter than 3 characters: whole numbers only
    ("Doe", []),  # another clinic's
])
def test_the_list_searches_by_name_and_number(as_clerk, patients, search, expected):
    response = as_clerk.get(LIST, {"q": search})

    assert listed(response) == expected


def test_a_short_search_says_why_it_finds_little(as_clerk, patients):
    page = as_clerk.get(LIST, {"q": "Al"}).content.decode()

    assert "Shorter than 3 characters" in page


def test_the_clinic_column_and_filter_are_for_staff_of_several_clinics(
    client, clinic, other_clinic, patients, roles, as_clerk
):
    single = as_clerk.get(LIST).content.decode()
    assert "<th scope=\"col\">Clinic</th>" not in single
    assert 'name="clinic"' not in single

    both = clerk_factory(username="both", clinics=[clinic, other_clinic])
    client.force_login(both)
    response = client.get(LIST)
    page = response.content.decode()
    assert "<th scope=\"col\">Clinic</th>" in page
    assert "<td>AUSTIN</td>" in page and "<td>MUSCAT</td>" in page
    assert listed(client.get(LIST, {"clinic": other_clinic.pk})) == ["John Doe"]


def test_the_list_pages_by_25(as_clerk, clinic):
    for n in range(30):
        AccountFactory(clinic=clinic, name=f"Patient {n:02d}", number=f"Q{n:05d}")

    first = as_clerk.get(LIST)
    second = as_clerk.get(LIST, {"page": 2})

    assert len(listed(first)) == 25
    assert listed(second) == [f"Patient {n:02d}" for n in range(25, 30)]
    assert 'href="?page=2"' in first.content.decode()


def test_the_list_is_for_signed_in_staff(client):
    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# -- a patient's page ------------------------------------------------------------------------------

@pytest.fixture
def history(clinic, account, vat, clerk, reason, pay):
    """Aisha's invoices: one paid (28.700), one issued and partly credited, one draft."""
    def invoice(issue=True, price="10.000"):
        return invoice_create(clinic=clinic, account=account, actor=clerk, issue=issue,
                              lines=[LineInput(description="Visit", quantity=D(1),
                                               unit_price=D(price), tax_rate=vat)])

    paid = invoice(price="20.000")
    pay(paid, "21.000")
    credited = invoice()
    note = credit_note_create(invoice=credited, dispute_reason=reason, actor=clerk,
                              lines=[CreditLineInput(credited.lines.get(), D("4.000"))])
    draft = invoice(issue=False)
    return {"paid": paid, "credited": credited, "note": note, "draft": draft}


def test_a_patients_page_shows_their_details_and_what_they_owe(as_clerk, clinic, history):
    account = history["paid"].account
    account.email, account.phone = "aisha@example.com", "+968 9222 3333"
    account.save()

    response = as_clerk.get(detail_url(account))

    assert response.status_code == 200
    page = response.content.decode()
    for shown in ("Aisha Al-Balushi", "P00001", "aisha@example.com", "+968 9222 3333",
                  "Muscat Clinic"):
        assert shown in page, shown
    # 10.500 less the credit of 4.200; the paid invoice and the draft owe nothing
    assert response.context["open_balance"] == D("6.300")
    assert "<strong>6.300 OMR</strong>" in page


def test_a_patients_page_lists_their_invoices(as_clerk, history):
    response = as_clerk.get(detail_url(history["paid"].account))

    assert response.context["invoices"] == [history["draft"], history["credited"],
                                            history["paid"]]
    page = response.content.decode()
    for invoice in (history["paid"], history["credited"], history["draft"]):
        assert reverse("desk:invoice_detail", args=[invoice.pk]) in page
    assert "INV-MUSCAT-000001" in page and "INV-MUSCAT-000002" in page
    assert ">Paid</span>" in page and ">Draft</span>" in page
    assert "21.000 OMR" in page  # the paid invoice's total
    assert "6.300 OMR" in page  # the credited one's balance due


def test_a_patients_page_lists_their_credit_notes(as_clerk, history):
    note = history["note"]

    response = as_clerk.get(detail_url(note.account))

    assert list(response.context["credit_notes"]) == [note]
    page = response.content.decode()
    assert f'<a href="{reverse("refunds:credit_note_detail", args=[note.pk])}">{note.number}</a>' \
        in page
    assert "4.200 OMR" in page


def test_a_patients_page_offers_a_new_invoice_for_them(client, as_clerk, approver, account):
    link = f'href="{reverse("desk:invoice_new")}?account={account.pk}"'

    assert link in as_clerk.get(detail_url(account)).content.decode()

    client.force_login(approver)
    page = client.get(detail_url(account))
    assert page.status_code == 200
    assert link not in page.content.decode()


def test_another_clinics_patient_is_not_found(client, outsider, account):
    client.force_login(outsider)

    assert client.get(detail_url(account)).status_code == 404


def test_an_unknown_patient_is_not_found(as_clerk):
    assert as_clerk.get("/billing/patients/999999/").status_code == 404


# -- bounded queries (docs/rules.md §9) ------------------------------------------------------------

def add_invoices(clinic, account, vat, clerk, reason, count):
    for _ in range(count):
        invoice = invoice_create(clinic=clinic, account=account, actor=clerk, issue=True,
                                 lines=[LineInput(description="Visit", quantity=D(1),
                                                  unit_price=D("10.000"), tax_rate=vat)])
        credit_note_create(invoice=invoice, dispute_reason=reason, actor=clerk,
                           lines=[CreditLineInput(invoice.lines.get(), D("1.000"))])


def test_a_patients_page_costs_the_same_with_2_invoices_or_12(
    as_clerk, django_assert_max_num_queries, clinic, account, vat, clerk, reason
):
    add_invoices(clinic, account, vat, clerk, reason, 2)
    with django_assert_max_num_queries(12) as few:
        as_clerk.get(detail_url(account))

    add_invoices(clinic, account, vat, clerk, reason, 10)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = as_clerk.get(detail_url(account))
    assert len(response.context["invoices"]) == 12


def test_the_list_costs_the_same_with_2_patients_or_12(
    as_clerk, django_assert_max_num_queries, clinic
):
    for n in range(2):
        AccountFactory(clinic=clinic, name=f"Patient {n:02d}")
    with django_assert_max_num_queries(10) as few:
        as_clerk.get(LIST, {"q": "patient"})

    for n in range(2, 12):
        AccountFactory(clinic=clinic, name=f"Patient {n:02d}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = as_clerk.get(LIST, {"q": "patient"})
    assert len(listed(response)) == 12
