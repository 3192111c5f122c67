"""Billing > Invoice as the clinic's manual describes it: "use the Search field to find the
invoice; click the invoice row to select it, then click the More Action menu". The rows carry
what the page's script needs to select them and fetch their menu; the menu is the invoice page's
own (desk/_more_action_items.html), fetched for the selected invoice; staff of several clinics
filter by clinic; a badge marks an approved request not yet carried out; every label is tied to
its field. (What the script does in a browser is the browser tests' business.)"""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from approvals.services import refund_request_create, request_approve
from billing.forms import NOT_YOUR_CLINIC
from billing.services import LineInput, invoice_create
from desk.actions import invoice_actions
from refunds.services import credit_note_create

from .factories import AccountFactory, ClinicFactory, TaxRateFactory, clerk_factory

D = Decimal
LIST = reverse("desk:invoice_list")
HTMX = {"HX-Request": "true"}
APPROVED_BADGE = "Approved — not yet carried out"


# -- reading the page's HTML -----------------------------------------------------------------------

class Element:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children: list[Element] = []
        self.text_parts: list[str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        parts = list(self.text_parts)
        for child in self.children:
            parts.append(child.text())
        return " ".join(" ".join(parts).split())

    def find_all(self, predicate):
        for child in self.children:
            if predicate(child):
                yield child
            yield from child.find_all(predicate)


class Page(HTMLParser):
    """A small DOM: enough to look elements up by tag, id, class and attribute."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", [], None)
        self.current = self.root
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs, self.current)
        self.current.children.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text_parts.append(data)

    def all(self, tag=None, **attrs) -> list[Element]:
        def matches(element):
            if tag and element.tag != tag:
                return False
            for name, value in attrs.items():
                name = name.rstrip("_").replace("_", "-")
                if name == "class":
                    if value not in element.classes:
                        return False
                elif value is True:
                    if name not in element.attrs:
                        return False
                elif element.attrs.get(name) != value:
                    return False
            return True

        return list(self.root.find_all(matches))

    def one(self, tag=None, **attrs) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


def parse(response) -> Page:
    assert response.status_code == 200
    return Page(response.content.decode())


def menu_entries(page: Page) -> list[tuple]:
    """(label, where it goes, how, disabled reason) of each More Action entry."""
    entries = []
    for item in page.all("li", class_="more-action-item"):
        refused = [e for e in item.find_all(lambda e: "action-refused" in e.classes)]
        if refused:
            reason = refused[0].children[0].text()
            entries.append((refused[0].text().removesuffix(reason).strip(), None, None, reason))
            continue
        forms = list(item.find_all(lambda e: e.tag == "form"))
        if forms:
            entries.append((item.text(), forms[0].attrs["action"], "post", None))
        else:
            link = next(item.find_all(lambda e: e.tag == "a"))
            entries.append((item.text(), link.attrs["href"], "get", None))
    return entries


def expected_entries(invoice, user) -> list[tuple]:
    invoice.refresh_from_db()
    return [(action.label, None if action.refusal else action.url,
             None if action.refusal else action.method, action.refusal)
            for action in invoice_actions(invoice=invoice, user=user)]


def listed(response):
    return [invoice.pk for invoice in response.context["page"].object_list]


@pytest.fixture
def as_clerk(client, clerk):
    client.force_login(clerk)
    return client


def actions_url(invoice):
    return reverse("desk:invoice_actions", args=[invoice.pk])


def detail_url(invoice):
    return reverse("desk:invoice_detail", args=[invoice.pk])


# -- selecting a row ------------------------------------------------------------------------------

def test_each_row_carries_what_selecting_it_needs(as_clerk, make_invoice):
    # given an issued invoice and a draft
    issued, draft = make_invoice(), make_invoice(issue=False)
    # when the clerk opens the list
    page = parse(as_clerk.get(LIST))
    # then the table is a grid of selectable rows, none selected yet
    table = page.one("table", id="invoice-table")
    assert table.attrs["role"] == "grid"
    rows = page.all("tr", class_="invoice-row")
    assert [row.attrs["data-invoice-id"] for row in rows] == [str(draft.pk), str(issued.pk)]
    for row, invoice in zip(rows, (draft, issued), strict=True):
        assert row.attrs["aria-selected"] == "false"
        assert row.attrs["data-invoice-number"] == (invoice.number or "Draft")
        assert row.attrs["data-href"] == detail_url(invoice)
        assert row.attrs["data-actions-url"] == actions_url(invoice)
        # and without JavaScript the number is still a plain link to the invoice
        link = next(row.find_all(lambda e: e.tag == "a"))
        assert link.attrs["href"] == detail_url(invoice)
        assert link.text() == (invoice.number or "Draft")
    # and More Action waits, disabled, for a row to be selected, saying so
    button = page.one("button", id="more-action")
    assert "disabled" in button.attrs
    assert button.text() == "More Action"
    assert page.one(id="more-action-hint").text() == "Select an invoice to see its actions"
    assert button.attrs["aria-describedby"] == "more-action-hint"
    assert page.one("ul", id="more-action-menu").children == []


def test_an_empty_list_offers_no_more_action(as_clerk, make_invoice):
    make_invoice()
    page = parse(as_clerk.get(LIST, {"q": "nobody"}))
    assert page.all(id="more-action") == []
    assert "No invoice matches" in page.one("table", id="invoice-table").text()


def test_rows_no_longer_open_on_a_single_click(as_clerk, make_invoice):
    # the click-opens behaviour of billing.js is kept for the approval queue, not this list
    make_invoice()
    page = parse(as_clerk.get(LIST))
    assert page.all("tr", class_="clickable") == []


def test_the_page_loads_htmx_from_our_own_static_files_without_inline_style(as_clerk):
    page = parse(as_clerk.get(LIST))
    sources = [script.attrs.get("src", "") for script in page.all("script")]
    assert "/static/django_htmx/htmx-2.min.js" in sources
    assert all(source.startswith("/static/") for source in sources)
    assert finders.find("django_htmx/htmx-2.min.js")
    assert page.one("meta", name="htmx-config").attrs["content"] == (
        '{"includeIndicatorStyles": false, "allowEval": false}')


# -- the More Action menu of the selected row -----------------------------------------------------

@pytest.mark.parametrize("state", ["draft", "issued", "paid"])
def test_the_menu_fetched_for_a_row_is_the_invoice_pages_own(as_clerk, clerk, make_invoice, pay,
                                                             state):
    # given an invoice in the state
    invoice = make_invoice(issue=state != "draft")
    if state == "paid":
        pay(invoice, "28.700")
    # when the list fetches its menu (as htmx does)
    response = as_clerk.get(actions_url(invoice), headers=HTMX)
    # then it holds the invoice page's entries, the same labels, links and disabled reasons
    fetched = menu_entries(parse(response))
    on_the_page = menu_entries(parse(as_clerk.get(detail_url(invoice))))
    assert fetched == on_the_page == expected_entries(invoice, clerk)
    assert fetched
    # and only those: no page around them
    assert b"<html" not in response.content
    assert "HX-Request" in response["Vary"]


def test_an_action_the_invoice_does_not_allow_is_fetched_disabled_with_its_reason(
        as_clerk, make_invoice):
    # given an issued invoice with nothing paid: nothing to refund
    invoice = make_invoice()
    page = parse(as_clerk.get(actions_url(invoice), headers=HTMX))
    entries = {label: (url, reason) for label, url, _, reason in menu_entries(page)}
    # then Refund is there, disabled, with the rule's sentence, and Cancel Invoice is offered
    url, reason = entries["Refund"]
    assert url is None
    assert reason.startswith(f"Nothing paid on {invoice} is left to refund.")
    refused = page.one("span", class_="action-refused")
    assert refused.attrs["aria-disabled"] == "true"
    assert entries["Cancel Invoice"] == (reverse("refunds:invoice_cancel", args=[invoice.pk]),
                                         None)


def test_a_draft_fetches_only_issue_and_discard_as_posts(as_clerk, make_invoice):
    draft = make_invoice(issue=False)
    page = parse(as_clerk.get(actions_url(draft), headers=HTMX))
    assert menu_entries(page) == [
        ("Issue invoice", reverse("desk:invoice_issue", args=[draft.pk]), "post", None),
        ("Discard draft", reverse("billing:invoice_discard", args=[draft.pk]), "post", None)]
    assert len(page.all("input", name="csrfmiddlewaretoken")) == 2  # each form posts its own


def test_someone_with_no_action_on_the_invoice_is_told_so(client, approver, make_invoice):
    invoice = make_invoice()
    client.force_login(approver)
    page = parse(client.get(actions_url(invoice), headers=HTMX))
    assert menu_entries(page) == []
    assert page.root.text() == f"No action of yours applies to {invoice.number}."


def test_the_menu_without_htmx_is_the_invoice_page(as_clerk, make_invoice):
    invoice = make_invoice()
    response = as_clerk.get(actions_url(invoice))
    assert response.status_code == 302
    assert response["Location"] == detail_url(invoice)


def test_another_clinics_invoice_has_no_menu(client, outsider, make_invoice, other_invoice,
                                             clerk):
    invoice = make_invoice()
    client.force_login(outsider)
    assert client.get(actions_url(invoice), headers=HTMX).status_code == 404
    assert client.get(actions_url(invoice)).status_code == 404
    client.force_login(clerk)
    assert client.get(actions_url(other_invoice), headers=HTMX).status_code == 404


def test_an_unknown_invoice_has_no_menu(as_clerk):
    assert as_clerk.get("/billing/invoices/999999/actions/", headers=HTMX).status_code == 404


def test_anonymous_visitors_asking_for_a_menu_are_sent_to_log_in(client, make_invoice):
    url = actions_url(make_invoice())
    response = client.get(url, headers=HTMX)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


# -- the clinic filter ----------------------------------------------------------------------------

@pytest.fixture
def group_member(clinic, other_clinic, roles):
    """Billing staff of both clinics."""
    return clerk_factory(username="group_member", clinics=[clinic, other_clinic])


def test_staff_of_several_clinics_filter_by_clinic(client, group_member, make_invoice,
                                                   other_invoice, clinic, other_clinic):
    ours = make_invoice()
    client.force_login(group_member)
    # the choice is All my clinics, then each of their clinics
    page = parse(client.get(LIST))
    select = page.one("select", name="clinic")
    assert [(option.attrs["value"], option.text()) for option in select.children] == [
        ("", "All my clinics"), (str(other_clinic.pk), "Austin Clinic (AUSTIN)"),
        (str(clinic.pk), "Muscat Clinic (MUSCAT)")]
    # all my clinics, then each one
    assert set(listed(client.get(LIST))) == {ours.pk, other_invoice.pk}
    assert listed(client.get(LIST, {"clinic": clinic.pk})) == [ours.pk]
    assert listed(client.get(LIST, {"clinic": other_clinic.pk})) == [other_invoice.pk]
    # and the choice stays selected on the page it filtered
    page = parse(client.get(LIST, {"clinic": clinic.pk}))
    chosen = [o for o in page.one("select", name="clinic").children if "selected" in o.attrs]
    assert [option.attrs["value"] for option in chosen] == [str(clinic.pk)]


def test_staff_of_one_clinic_are_not_offered_a_clinic_choice(as_clerk, make_invoice):
    make_invoice()
    page = parse(as_clerk.get(LIST))
    assert page.all("select", name="clinic") == []
    assert page.all("label", for_="id_clinic") == []


@pytest.mark.parametrize("forged", ["third", "other", "not-a-number"])
def test_a_clinic_that_is_not_mine_is_refused_plainly(client, clerk, make_invoice, other_invoice,
                                                      forged):
    # given a clerk of Muscat only, and invoices of Austin and of a third clinic
    ours = make_invoice()
    third = ClinicFactory(code="SALALAH", name="Salalah Clinic")
    invoice_create(
        clinic=third, account=AccountFactory(clinic=third), actor=clinic_member(third),
        issue=True, lines=[LineInput(description="Visit", quantity=D(1), unit_price=D("5.000"),
                                     tax_rate=TaxRateFactory(clinic=third))])
    clinic_id = {"third": third.pk, "other": other_invoice.clinic_id,
                 "not-a-number": "abc"}[forged]
    client.force_login(clerk)
    # when they ask for that clinic's invoices
    response = client.get(LIST, {"clinic": clinic_id})
    # then the page says plainly what to do, and shows only their own clinic's invoices
    assert response.status_code == 200
    assert NOT_YOUR_CLINIC in response.content.decode()
    assert listed(response) == [ours.pk]


def clinic_member(clinic):
    return clerk_factory(username=f"staff_{clinic.code.lower()}", clinics=[clinic])


def test_a_clinic_outside_mine_is_refused_to_staff_of_several_too(client, group_member,
                                                                   make_invoice, other_invoice):
    third = ClinicFactory(code="SALALAH", name="Salalah Clinic")
    client.force_login(group_member)
    response = client.get(LIST, {"clinic": third.pk})
    assert response.context["form"].errors == {"clinic": [NOT_YOUR_CLINIC]}
    assert third.pk not in {invoice.clinic_id for invoice in response.context["page"]}


# -- the badges -----------------------------------------------------------------------------------

def badges(page: Page, invoice) -> list[str]:
    row = page.one("tr", data_invoice_id=str(invoice.pk))
    return [badge.text() for badge in row.find_all(lambda e: "badge" in e.classes)]


def test_an_approved_request_not_yet_carried_out_is_marked_in_the_list(
        as_clerk, clerk, approver, approval_clinic, make_invoice, pay, reason):
    # given three paid invoices of an approval clinic: one with a request waiting, one with a
    # request approved, one with nothing asked
    waiting, approved, quiet = (make_invoice() for _ in range(3))
    for invoice in (waiting, approved, quiet):
        pay(invoice, "28.700")
    refund_request_create(invoice=waiting, remarks="Charged twice", actor=clerk)
    request = refund_request_create(invoice=approved, remarks="Charged twice", actor=clerk)
    request_approve(financial_request=request, actor=approver, remarks="Receipts checked")
    # then the list marks each as it stands
    page = parse(as_clerk.get(LIST))
    assert badges(page, waiting) == ["Paid", "Awaiting approval"]
    assert badges(page, approved) == ["Paid", APPROVED_BADGE]
    assert badges(page, quiet) == ["Paid"]
    # and once the approved refund is carried out, the mark goes
    credit_note_create(invoice=approved, full=True, dispute_reason=reason, actor=clerk)
    page = parse(as_clerk.get(LIST))
    assert badges(page, approved) == ["Refunded"]


# -- labels ---------------------------------------------------------------------------------------

def test_every_filter_label_is_tied_to_its_field(client, group_member, make_invoice):
    make_invoice()
    client.force_login(group_member)
    page = parse(client.get(LIST))
    form = page.one("form", method="get")
    labels = list(form.find_all(lambda e: e.tag == "label"))
    fields = [e for e in form.find_all(lambda e: e.tag in {"input", "select", "textarea"})
              if e.attrs.get("type") not in {"hidden", "submit", "button"}]
    ids = {element.attrs["id"] for element in page.all() if "id" in element.attrs}
    # every label names an element of the page
    assert labels
    assert all(label.attrs.get("for") in ids for label in labels)
    # and every field has a label naming it
    labelled = {label.attrs["for"] for label in labels}
    assert [field.attrs.get("name") for field in fields] == [
        "q", "clinic", "status", "date_from", "date_to"]
    assert all(field.attrs.get("id") in labelled for field in fields)
    # with the words staff read
    assert [label.text() for label in labels] == [
        "Search:", "Clinic:", "Status:", "Issued from:", "Issued to:"]


# -- cost -----------------------------------------------------------------------------------------

def test_a_full_page_of_25_invoices_costs_a_bounded_number_of_queries(
        client, clerk, approver, approval_clinic, make_invoice, pay,
        django_assert_max_num_queries):
    # given 30 paid invoices, some with a request waiting and some approved
    for n in range(30):
        invoice = make_invoice()
        pay(invoice, "28.700")
        if n % 3:
            request = refund_request_create(invoice=invoice, remarks="Charged twice",
                                            actor=clerk)
            if n % 3 == 2:
                request_approve(financial_request=request, actor=approver)
    client.force_login(clerk)
    # when the clerk opens the list: 25 rows with their badges, in as many queries as 1 row
    # (session, user, the menu's count, the menu's permissions (user and group), the clinics,
    # the count, the rows)
    with django_assert_max_num_queries(8):
        response = client.get(LIST)
    page = parse(response)
    assert len(page.all("tr", class_="invoice-row")) == 25
    assert response.content.decode().count(APPROVED_BADGE) > 0
