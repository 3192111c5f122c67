"""The Financial Approval screens (docs/rules.md §5, §7), as the personas see them: the clerk
submits requests, the approver decides them, the outsider (staff of another clinic) sees none of
it."""

import datetime
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from approvals.context_processors import awaiting_count
from approvals.models import FinancialRequest, FinancialRequestLine, RequestKind, RequestStatus
from approvals.rules import DIRECT_POLICY, OWN_REQUEST
from approvals.selectors import requests_awaiting
from approvals.services import (
    REJECT_REMARKS,
    REMARKS_REQUIRED,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
)
from audit.models import Action, AuditEvent
from billing.breakdown import CreditLineInput
from billing.models import Policy
from billing.roles import BILLING_STAFF, FINANCIAL_APPROVERS

from .conftest import ledger_state
from .factories import AccountFactory, TaxRateFactory, UserFactory, set_policy

D = Decimal

QUEUE = reverse("approvals:queue")
OWN_REQUEST_NOTICE = "You submitted this request, so another approver must decide it."


def detail_url(financial_request):
    return reverse("approvals:request_detail", args=[financial_request.pk])


def action_url(action, financial_request):
    return reverse(f"approvals:request_{action}", args=[financial_request.pk])


def refund_request_url(invoice):
    return reverse("approvals:refund_request_create", args=[invoice.pk])


def cancellation_request_url(invoice):
    return reverse("approvals:cancellation_request_create", args=[invoice.pk])


def listed(response):
    return [item.pk for item in response.context["page"].object_list]


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def request_events(financial_request):
    return list(AuditEvent.objects.filter(
        content_type__model="financialrequest", object_id=str(financial_request.pk),
    ).order_by("pk").values_list("action", "actor_username", "remarks"))


@pytest.fixture
def invoice(approval_clinic, make_invoice, pay):
    """A paid invoice (28.700 OMR) of a clinic whose refunds and cancellations need approval."""
    invoice = make_invoice()
    pay(invoice, "28.700")
    return invoice


@pytest.fixture
def requested(invoice, clerk):
    """The clerk's refund request, waiting for a decision."""
    return refund_request_create(invoice=invoice, remarks="Patient was charged twice",
                                 actor=clerk)


@pytest.fixture
def dual(clinic, roles):
    """A member who is both billing staff and financial approver."""
    return UserFactory(username="dual", groups=[BILLING_STAFF, FINANCIAL_APPROVERS],
                       clinics=[clinic])


@pytest.fixture
def other_request(other_clinic, outsider):
    """A cancellation request of the Austin clinic, submitted by the outsider."""
    set_policy(other_clinic, cancellation=Policy.APPROVAL)
    from billing.services import LineInput, invoice_create

    invoice = invoice_create(
        clinic=other_clinic, account=AccountFactory(clinic=other_clinic), actor=outsider,
        lines=[LineInput(description="Visit", quantity=D("1"), unit_price=D("120.00"),
                         tax_rate=TaxRateFactory(clinic=other_clinic))],
        issue=True,
    )
    return cancellation_request_create(invoice=invoice, remarks="Wrong patient", actor=outsider)


@pytest.fixture
def as_approver(client, approver):
    client.force_login(approver)
    return client


@pytest.fixture
def as_clerk(client, clerk):
    client.force_login(clerk)
    return client


# -- the queue -----------------------------------------------------------------------------------

def test_the_queue_lists_only_the_requests_of_my_clinics(client, approver, outsider, requested,
                                                         other_request):
    client.force_login(approver)
    response = client.get(QUEUE)
    assert response.status_code == 200
    assert listed(response) == [requested.pk]
    page = response.content.decode()
    assert "INV-MUSCAT-000001" in page
    assert "Invoice Refund Request" in page
    assert "Aisha Al-Balushi" in page
    assert detail_url(requested) in page
    assert reverse("desk:invoice_detail", args=[requested.invoice_id]) in page
    assert "Wrong patient" not in page

    client.force_login(outsider)
    assert listed(client.get(QUEUE)) == [other_request.pk]


def test_the_queue_shows_newest_first_with_counts_per_status(
        as_approver, approver, approval_clinic, make_invoice, clerk):
    # given three invoices with a request each: one waiting, one approved, one rejected
    first, second, third = (make_invoice() for _ in range(3))
    waiting = cancellation_request_create(invoice=first, remarks="Wrong patient", actor=clerk)
    approved = cancellation_request_create(invoice=second, remarks="No visit", actor=clerk)
    request_approve(financial_request=approved, actor=approver, remarks="Fine")
    rejected = cancellation_request_create(invoice=third, remarks="Pay later", actor=clerk)
    request_reject(financial_request=rejected, actor=approver, remarks="Not a reason to cancel")
    # when the approver opens the queue
    response = as_approver.get(QUEUE)
    # then all three are listed, newest first, with a count for every status
    assert listed(response) == [rejected.pk, approved.pk, waiting.pk]
    assert response.context["counts"] == {
        "requested": 1, "approved": 1, "rejected": 1, "withdrawn": 0, "completed": 0,
        "expired": 0}
    page = response.content.decode()
    assert "?status=requested" in page
    assert "Not a reason to cancel" not in page  # the queue shows the request's own remarks
    assert "Pay later" in page


@pytest.mark.parametrize(("status", "expected"), [
    ("requested", ["waiting"]), ("approved", ["approved"]), ("rejected", []), ("", ["waiting",
                                                                                  "approved"]),
])
def test_the_queue_filters_by_status(as_approver, approver, approval_clinic, make_invoice, clerk,
                                     status, expected):
    made = {
        "waiting": cancellation_request_create(invoice=make_invoice(), remarks="A", actor=clerk),
        "approved": cancellation_request_create(invoice=make_invoice(), remarks="B", actor=clerk),
    }
    request_approve(financial_request=made["approved"], actor=approver)
    response = as_approver.get(QUEUE, {"status": status})
    assert sorted(listed(response)) == sorted(made[name].pk for name in expected)
    # the counts ignore the status filter, so every pill keeps its number
    assert response.context["counts"]["requested"] == 1
    assert response.context["counts"]["approved"] == 1


def test_the_queue_filters_by_requested_date_inclusive(as_approver, approval_clinic,
                                                       make_invoice, clerk):
    # given requests made on 1, 5 and 9 March
    dated = {}
    for day in (1, 5, 9):
        made = cancellation_request_create(invoice=make_invoice(), remarks=f"Day {day}",
                                           actor=clerk)
        FinancialRequest.objects.filter(pk=made.pk).update(requested_at=datetime.datetime(
            2030, 3, day, 12, 0, tzinfo=datetime.UTC))
        dated[day] = made.pk
    # when filtered from 5 to 9 March, both ends included
    response = as_approver.get(QUEUE, {"date_from": "2030-03-05", "date_to": "2030-03-09"})
    # then the requests of those days are listed, and counted
    assert listed(response) == [dated[9], dated[5]]
    assert response.context["counts"]["requested"] == 2
    assert listed(as_approver.get(QUEUE, {"date_to": "2030-03-01"})) == [dated[1]]
    assert listed(as_approver.get(QUEUE, {"date_from": "2030-03-10"})) == []


def test_the_queue_searches_by_invoice_number(as_approver, approval_clinic, make_invoice, clerk):
    first = cancellation_request_create(invoice=make_invoice(), remarks="A", actor=clerk)
    second = cancellation_request_create(invoice=make_invoice(), remarks="B", actor=clerk)
    assert listed(as_approver.get(QUEUE, {"q": "INV-MUSCAT-000002"})) == [second.pk]
    response = as_approver.get(QUEUE, {"q": "000001"})
    assert listed(response) == [first.pk]
    assert response.context["counts"]["requested"] == 1
    empty = as_approver.get(QUEUE, {"q": "nothing"})
    assert listed(empty) == []
    assert "No request matches" in empty.content.decode()


def test_the_queue_pages_by_25_and_keeps_the_filters(as_approver, approval_clinic, make_invoice,
                                                     clerk):
    for _ in range(26):
        cancellation_request_create(invoice=make_invoice([("1", "1.000")]), remarks="Duplicate",
                                    actor=clerk)
    first = as_approver.get(QUEUE, {"status": "requested"})
    assert len(first.context["page"].object_list) == 25
    assert 'href="?status=requested&page=2"' in first.content.decode()
    assert len(as_approver.get(QUEUE, {"status": "requested", "page": "2"})
               .context["page"].object_list) == 1


# -- what each persona sees on a request ---------------------------------------------------------

def test_the_approver_sees_the_request_and_the_decision_forms(as_approver, invoice, clerk):
    line = invoice.lines.order_by("position").first()
    proposed = refund_request_create(invoice=invoice, remarks="Blood test charged twice",
                                     actor=clerk, lines=[CreditLineInput(line, D("5.000"))])
    response = as_approver.get(detail_url(proposed))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Blood test charged twice" in page
    assert "28.700 OMR" in page  # total and paid
    assert "5.000 OMR" in page  # the proposed amount without tax
    assert action_url("approve", proposed) in page
    assert action_url("reject", proposed) in page
    assert action_url("withdraw", proposed) not in page
    assert [e.action for e in response.context["history"]] == [Action.REQUEST_SUBMITTED]


def test_the_requester_sees_no_decision_forms_and_may_withdraw(as_clerk, requested):
    response = as_clerk.get(detail_url(requested))
    assert response.status_code == 200
    page = response.content.decode()
    assert OWN_REQUEST_NOTICE in page
    assert action_url("approve", requested) not in page
    assert action_url("reject", requested) not in page
    assert action_url("withdraw", requested) in page


def test_a_requester_who_is_also_an_approver_cannot_decide_their_own_request(
        client, dual, invoice):
    # given a request submitted by someone who holds the approval permission too
    own = refund_request_create(invoice=invoice, remarks="Overcharged", actor=dual)
    client.force_login(dual)
    # then its page offers no decision
    page = client.get(detail_url(own)).content.decode()
    assert OWN_REQUEST_NOTICE in page
    assert action_url("approve", own) not in page
    # and a forged approval is refused with the service's message, nothing written
    before = ledger_state()
    response = client.post(action_url("approve", own), {"remarks": "Looks right"}, follow=True)
    assert response.redirect_chain == [(detail_url(own), 302)]
    assert OWN_REQUEST in messages_of(response)
    assert OWN_REQUEST in response.content.decode()
    own.refresh_from_db()
    assert own.status == RequestStatus.REQUESTED
    assert ledger_state() == before


def test_the_outsider_gets_404_on_another_clinics_request(client, outsider, requested):
    client.force_login(outsider)
    before = ledger_state()
    assert client.get(detail_url(requested)).status_code == 404
    for action in ("approve", "reject", "withdraw"):
        assert client.post(action_url(action, requested), {"remarks": "x"}).status_code == 404
    requested.refresh_from_db()
    assert requested.status == RequestStatus.REQUESTED
    assert ledger_state() == before


def test_the_outsider_gets_404_on_the_request_forms_of_another_clinics_invoice(
        client, outsider, invoice):
    client.force_login(outsider)
    for url in (refund_request_url(invoice), cancellation_request_url(invoice)):
        assert client.get(url).status_code == 404
        assert client.post(url, {"remarks": "Please"}).status_code == 404
    assert FinancialRequest.objects.count() == 0


def test_an_unknown_request_is_not_found(as_approver):
    assert as_approver.get("/approvals/999999/").status_code == 404


@pytest.mark.parametrize("action", ["approve", "reject", "withdraw"])
def test_the_decision_urls_accept_only_post(as_approver, requested, action):
    assert as_approver.get(action_url(action, requested)).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("url", [QUEUE, "/approvals/1/", "/approvals/invoices/1/refund-request/",
                                 "/approvals/invoices/1/cancellation-request/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


# -- deciding ------------------------------------------------------------------------------------

def test_the_approver_approves_with_remarks(as_approver, requested):
    response = as_approver.post(action_url("approve", requested),
                                {"remarks": "Checked the receipts"}, follow=True)
    assert response.redirect_chain == [(QUEUE, 302)]
    assert (f"Invoice Refund Request #{requested.pk} for Invoice INV-MUSCAT-000001 approved."
            in messages_of(response))
    requested.refresh_from_db()
    assert requested.status == RequestStatus.APPROVED
    assert requested.decided_by.username == "approver"
    assert requested.decision_remarks == "Checked the receipts"
    assert request_events(requested)[-1] == (Action.REQUEST_APPROVED, "approver",
                                             "Checked the receipts")


def test_the_approver_approves_without_remarks(as_approver, requested):
    as_approver.post(action_url("approve", requested))
    requested.refresh_from_db()
    assert (requested.status, requested.decision_remarks) == (RequestStatus.APPROVED, "")


def test_rejecting_without_remarks_shows_the_services_message(as_approver, requested):
    before = ledger_state()
    response = as_approver.post(action_url("reject", requested), {"remarks": "  "}, follow=True)
    assert response.redirect_chain == [(detail_url(requested), 302)]
    assert REJECT_REMARKS in messages_of(response)
    assert REJECT_REMARKS in response.content.decode()
    requested.refresh_from_db()
    assert (requested.status, requested.decided_by) == (RequestStatus.REQUESTED, None)
    assert ledger_state() == before


def test_the_approver_rejects_with_remarks(as_approver, requested, invoice):
    response = as_approver.post(action_url("reject", requested),
                                {"remarks": "Not covered by the refund policy"})
    assert response.status_code == 302
    assert response["Location"] == QUEUE
    requested.refresh_from_db()
    assert requested.status == RequestStatus.REJECTED
    assert request_events(requested)[-1] == (Action.REQUEST_REJECTED, "approver",
                                             "Not covered by the refund policy")


def test_the_requester_withdraws_their_request(as_clerk, requested, invoice):
    response = as_clerk.post(action_url("withdraw", requested), follow=True)
    assert response.redirect_chain == [
        (reverse("desk:invoice_detail", args=[invoice.pk]), 302)]
    assert f"Invoice Refund Request #{requested.pk} withdrawn." in messages_of(response)
    requested.refresh_from_db()
    assert requested.status == RequestStatus.WITHDRAWN
    assert request_events(requested)[-1] == (Action.REQUEST_WITHDRAWN, "clerk", "")


def test_a_decided_request_offers_no_more_decision(as_approver, approver, requested):
    request_approve(financial_request=requested, actor=approver)
    page = as_approver.get(detail_url(requested)).content.decode()
    assert action_url("approve", requested) not in page
    assert action_url("reject", requested) not in page


# -- submitting requests -------------------------------------------------------------------------

def test_the_refund_request_form_shows_each_line_with_what_remains(as_clerk, invoice):
    response = as_clerk.get(refund_request_url(invoice))
    assert response.status_code == 200
    form = response.context["form"]
    assert [(line.description, amount.value()) for line, _, amount in form.rows()] == [
        ("Item 1", D("20.000")), ("Item 2", D("7.333"))]
    assert "20.000 OMR" in response.content.decode()


def test_the_clerk_submits_a_refund_request_with_one_proposed_line(as_clerk, invoice, clerk):
    line_a, line_b = invoice.lines.order_by("position")
    response = as_clerk.post(refund_request_url(invoice), {
        "remarks": "Item 1 was charged twice",
        f"line_{line_a.pk}": "on", f"amount_{line_a.pk}": "5.000",
        f"amount_{line_b.pk}": "7.333",  # not ticked: not proposed
    }, follow=True)
    [made] = FinancialRequest.objects.all()
    assert response.redirect_chain == [
        (reverse("desk:invoice_detail", args=[invoice.pk]), 302)]
    assert (f"Invoice Refund Request #{made.pk} submitted; a financial approver will review it."
            in messages_of(response))
    assert (made.kind, made.status, made.requested_by, made.remarks) == (
        RequestKind.REFUND, RequestStatus.REQUESTED, clerk, "Item 1 was charged twice")
    assert list(made.lines.values_list("invoice_line", "amount")) == [(line_a.pk, D("5.000"))]
    assert request_events(made) == [(Action.REQUEST_SUBMITTED, "clerk", "Item 1 was charged twice")]


def test_a_refund_request_without_lines_asks_for_the_whole_refund(as_clerk, invoice):
    as_clerk.post(refund_request_url(invoice), {"remarks": "Patient asked for a refund"})
    [made] = FinancialRequest.objects.all()
    assert made.kind == RequestKind.REFUND
    assert not FinancialRequestLine.objects.exists()


def test_a_ticked_line_with_no_amount_proposes_all_that_remains(as_clerk, invoice):
    line_a, _ = invoice.lines.order_by("position")
    as_clerk.post(refund_request_url(invoice), {"remarks": "Not done",
                                                f"line_{line_a.pk}": "on",
                                                f"amount_{line_a.pk}": ""})
    [made] = FinancialRequest.objects.all()
    assert list(made.lines.values_list("amount", flat=True)) == [D("20.000")]


@pytest.mark.parametrize("url", [refund_request_url, cancellation_request_url])
def test_blank_remarks_are_refused_with_the_services_message(as_clerk, invoice, url):
    before = ledger_state()
    response = as_clerk.post(url(invoice), {"remarks": "   "})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [REMARKS_REQUIRED]
    assert REMARKS_REQUIRED in response.content.decode()
    assert FinancialRequest.objects.count() == 0
    assert ledger_state() == before


def test_a_proposed_amount_over_the_line_is_refused_and_nothing_written(as_clerk, invoice):
    line_a, _ = invoice.lines.order_by("position")
    response = as_clerk.post(refund_request_url(invoice), {
        "remarks": "Too much", f"line_{line_a.pk}": "on", f"amount_{line_a.pk}": "20.001"})
    assert response.status_code == 200
    [message] = response.context["form"].non_field_errors()
    assert "20.000 OMR" in message
    assert FinancialRequest.objects.count() == 0


def test_the_clerk_submits_a_cancellation_request(as_clerk, approval_clinic, make_invoice):
    unpaid = make_invoice()
    response = as_clerk.post(cancellation_request_url(unpaid),
                             {"remarks": "Raised for the wrong patient"})
    [made] = FinancialRequest.objects.all()
    assert response.status_code == 302
    assert response["Location"] == reverse("desk:invoice_detail", args=[unpaid.pk])
    assert (made.kind, made.status) == (RequestKind.CANCELLATION, RequestStatus.REQUESTED)


def test_a_cancellation_request_in_a_direct_clinic_is_refused(as_clerk, clinic, make_invoice):
    # given a clinic that cancels invoices directly
    invoice = make_invoice()
    before = ledger_state()
    response = as_clerk.post(cancellation_request_url(invoice), {"remarks": "Wrong patient"})
    message = DIRECT_POLICY.format(clinic="Muscat Clinic", what="cancels invoices")
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [message]
    assert message in response.content.decode()
    assert FinancialRequest.objects.count() == 0
    assert ledger_state() == before


# -- requests awaiting me ------------------------------------------------------------------------

def test_requests_awaiting_are_the_waiting_ones_i_may_decide(
        approver, clerk, dual, other_approver, requested, other_request, approval_clinic,
        make_invoice):
    own = cancellation_request_create(invoice=make_invoice(), remarks="Mine", actor=dual)
    assert list(requests_awaiting(user=approver)) == [own, requested]
    assert list(requests_awaiting(user=dual)) == [requested]  # never their own
    assert list(requests_awaiting(user=clerk)) == []  # no approval permission
    assert list(requests_awaiting(user=other_approver)) == [other_request]
    assert list(requests_awaiting(user=AnonymousUser())) == []


def test_the_nav_shows_how_many_requests_await_me(as_approver, requested):
    page = as_approver.get(reverse("home")).content.decode()
    assert "Financial Approval" in page
    assert "1<span class=\"visually-hidden\"> waiting for your decision" in page


def test_the_awaiting_count_costs_one_query_and_nothing_when_anonymous(
        approver, requested, django_assert_num_queries):
    web_request = RequestFactory().get("/")
    web_request.user = type(approver).objects.get(pk=approver.pk)  # no permission cache
    with django_assert_num_queries(1):
        assert awaiting_count(web_request)["approvals_awaiting"] == 1
    web_request.user = AnonymousUser()
    with django_assert_num_queries(0):
        assert awaiting_count(web_request) == {}


def test_the_requested_date_filter_uses_the_date_of_requested_at(as_approver, requested):
    today = timezone.now().date().isoformat()
    assert listed(as_approver.get(QUEUE, {"date_from": today, "date_to": today})) == [
        requested.pk]


# -- back to the queue as it was ------------------------------------------------------------------

def test_after_deciding_the_approver_returns_to_the_queue_with_the_filters_kept(
        client, approver, requested):
    client.force_login(approver)
    filters = "status=requested&q=INV-MUSCAT"
    queue = client.get(f"{QUEUE}?{filters}")
    link = f"{detail_url(requested)}?{urlencode({'back': filters})}"
    assert link.replace("&", "&amp;") in queue.content.decode()

    page = client.get(link)
    assert f'name="back" value="{filters}"'.replace("&", "&amp;") in page.content.decode()
    response = client.post(action_url("approve", requested), {"remarks": "", "back": filters})

    assert response.status_code == 302
    assert response["Location"] == f"{QUEUE}?{filters}"


@pytest.mark.parametrize("back", ["https://elsewhere.example/", "//elsewhere.example/x", ""])
def test_the_way_back_always_leads_to_the_queue_itself(client, approver, requested, back):
    client.force_login(approver)

    response = client.post(action_url("approve", requested), {"remarks": "", "back": back})

    location = response["Location"]
    assert location == QUEUE or location.startswith(f"{QUEUE}?")
    assert "elsewhere.example/" not in location.split("?", 1)[0]


@pytest.mark.parametrize("url_name", ["approvals:refund_request_create",
                                      "approvals:cancellation_request_create"])
def test_request_forms_are_saved_with_save_and_mark_the_remarks_required(
        client, clerk, invoice, url_name):
    # the words of the clinic's manual: "enter the required remarks and SAVE"
    client.force_login(clerk)
    html = client.get(reverse(url_name, args=[invoice.pk])).content.decode()

    assert '<button type="submit" class="btn btn-primary">SAVE</button>' in html
    assert "Remarks (required)" in html
    assert 'name="remarks"' in html and "required" in html.split('name="remarks"', 1)[1][:200]
