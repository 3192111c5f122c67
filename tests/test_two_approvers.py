"""Requests that need two approvers (docs/rules.md §5): after the first approval a request stays
requested ("1 of 2 approvals"); the second must come from someone else than the first approver
and the requester — the database refuses both too; a rejection by anyone ends it; concurrent
decisions give exactly one outcome per step."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from approvals.models import Approvers, RequestApproval, RequestKind, RequestStatus
from approvals.rules import (
    ALREADY_DECIDED,
    APPROVED_ALREADY_BY_YOU,
    AWAITING_DECISION,
    OWN_REQUEST,
)
from approvals.selectors import requests_awaiting
from approvals.services import (
    RuleSpec,
    approval_rules_set,
    refund_request_create,
    request_approve,
    request_reject,
)
from audit.models import Action, AuditEvent
from refunds.services import credit_note_create

from .api_helpers import gql
from .concurrency import as_user, race
from .conftest import requires_postgres
from .factories import UserFactory, approver_factory

D = Decimal


@pytest.fixture
def two_approvers_clinic(clinic):
    """Every refund or credit needs two different approvers."""
    approval_rules_set(clinic=clinic, kind=RequestKind.REFUND,
                       rules=[RuleSpec(Approvers.TWO)])
    return clinic


@pytest.fixture
def second_approver(clinic, roles):
    return approver_factory(username="approver2", clinics=[clinic], first_name="Aisha",
                            last_name="Al-Said")


@pytest.fixture
def waiting(two_approvers_clinic, make_invoice, pay, clerk):
    """A paid invoice's refund request, needing two approvals."""
    invoice = make_invoice()
    pay(invoice, "28.700")
    return refund_request_create(invoice=invoice, remarks="Charged twice", actor=clerk)


def test_a_request_needing_two_stays_requested_after_the_first_approval(waiting, approver,
                                                                        second_approver):
    assert waiting.approvals_needed == 2

    first = request_approve(financial_request=waiting, actor=approver, remarks="Looks right")

    assert first.status == RequestStatus.REQUESTED
    assert (first.decided_by, first.decided_at) == (None, None)
    assert [(a.step, a.approved_by, a.remarks) for a in first.approvals.all()] == [
        (1, approver, "Looks right")]

    second = request_approve(financial_request=waiting, actor=second_approver)

    assert second.status == RequestStatus.APPROVED
    assert second.decided_by == second_approver
    assert [a.approved_by for a in second.approvals.all()] == [approver, second_approver]
    events = AuditEvent.objects.filter(action=Action.REQUEST_APPROVED,
                                       object_id=str(waiting.pk)).order_by("pk")
    assert [(e.to_state, e.data) for e in events] == [
        (RequestStatus.REQUESTED, {"approval": 1, "approvals_needed": 2}),
        (RequestStatus.APPROVED, {"approval": 2, "approvals_needed": 2})]


def test_the_same_approver_cannot_give_both_approvals(waiting, approver, refused):
    request_approve(financial_request=waiting, actor=approver)

    with refused(APPROVED_ALREADY_BY_YOU):
        request_approve(financial_request=waiting, actor=approver)
    assert waiting.approvals.count() == 1


def test_the_requester_cannot_approve_even_holding_the_permission(
        two_approvers_clinic, make_invoice, pay, refused):
    # given a billing administrator who may both submit and approve
    admin = UserFactory(username="boss", is_superuser=True, clinics=[two_approvers_clinic])
    invoice = make_invoice()
    pay(invoice, "28.700")
    request = refund_request_create(invoice=invoice, remarks="Charged twice", actor=admin)
    with refused(OWN_REQUEST):
        request_approve(financial_request=request, actor=admin)


def test_the_database_refuses_the_same_approver_twice_and_the_requester(waiting, approver,
                                                                        clerk):
    request_approve(financial_request=waiting, actor=approver)
    for approved_by, step in [(approver, 2), (clerk, 2)]:
        with pytest.raises(IntegrityError), transaction.atomic():
            RequestApproval.objects.create(request=waiting, step=step, approved_by=approved_by,
                                           requested_by=clerk, approved_at=waiting.requested_at)
    assert waiting.approvals.count() == 1


def test_a_rejection_after_the_first_approval_ends_the_request(waiting, approver,
                                                               second_approver, refused):
    request_approve(financial_request=waiting, actor=approver)

    rejected = request_reject(financial_request=waiting, actor=second_approver,
                              remarks="Not a duplicate")

    assert rejected.status == RequestStatus.REJECTED
    assert rejected.decided_by == second_approver
    third = approver_factory(username="approver3", clinics=[waiting.clinic])
    with refused(ALREADY_DECIDED.format(who="approver2", status="rejected")):
        request_approve(financial_request=waiting, actor=third)


def test_the_first_approver_has_decided_and_leaves_the_rest_to_another(waiting, approver,
                                                                         refused):
    request_approve(financial_request=waiting, actor=approver)
    with refused(APPROVED_ALREADY_BY_YOU):
        request_reject(financial_request=waiting, actor=approver, remarks="On second thought")


def test_nothing_is_carried_out_on_one_approval_of_two(waiting, approver, clerk, reason,
                                                       refused):
    request_approve(financial_request=waiting, actor=approver)
    with refused(AWAITING_DECISION.format(kind="Invoice Refund Request",
                                          invoice=waiting.invoice)):
        credit_note_create(invoice=waiting.invoice, full=True, dispute_reason=reason,
                           actor=clerk)


def test_the_first_approver_no_longer_has_it_waiting(waiting, approver, second_approver):
    assert list(requests_awaiting(user=approver)) == [waiting]
    request_approve(financial_request=waiting, actor=approver)
    assert list(requests_awaiting(user=approver)) == []
    assert list(requests_awaiting(user=second_approver)) == [waiting]


def test_the_screens_say_one_of_two(client, waiting, approver, second_approver):
    client.force_login(approver)
    response = client.post(reverse("approvals:request_approve", args=[waiting.pk]),
                           {"remarks": "Fine by me"}, follow=True)
    page = response.content.decode()
    assert "your approval is 1 of 2. It now waits for a second, different approver." in page
    assert "Requested · 1 of 2 approvals" in page  # the queue's badge

    detail = client.get(reverse("approvals:request_detail", args=[waiting.pk])).content.decode()
    assert APPROVED_ALREADY_BY_YOU in detail
    assert "(1 of 2 approvals)" in detail
    assert 'action="' + reverse("approvals:request_approve", args=[waiting.pk]) not in detail

    client.force_login(second_approver)
    detail = client.get(reverse("approvals:request_detail", args=[waiting.pk])).content.decode()
    assert "needs <strong>two different approvers</strong>: 1 of 2 so far" in detail
    assert 'action="' + reverse("approvals:request_approve", args=[waiting.pk]) in detail


def test_the_api_shows_each_approval(client, waiting, approver, second_approver,
                                     approver_token):
    body = gql(client, approver_token, """mutation($id: ID!) {
        financialRequestApprove(requestId: $id, remarks: "First look") {
            financialRequest { status approvalsNeeded approvals { by remarks } decidedBy }
            errors } }""", {"id": str(waiting.pk)})
    assert body["data"]["financialRequestApprove"] == {
        "financialRequest": {"status": "REQUESTED", "approvalsNeeded": 2,
                             "approvals": [{"by": "approver", "remarks": "First look"}],
                             "decidedBy": None},
        "errors": []}


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_three_approvers_at_once_give_exactly_two_approvals(waiting, approver, second_approver,
                                                            roles):
    third = approver_factory(username="approver3", clinics=[waiting.clinic])
    outcomes = race(*[
        (lambda user=user: request_approve(financial_request=waiting, actor=as_user(user)))
        for user in (approver, second_approver, third)])

    waiting.refresh_from_db()
    assert waiting.status == RequestStatus.APPROVED
    assert sorted(a.step for a in waiting.approvals.all()) == [1, 2]
    assert sum(1 for ok, _ in outcomes if ok) == 2
    refusals = [value.message for ok, value in outcomes if not ok]
    assert len(refusals) == 1 and refusals[0].startswith("This request was already decided")
