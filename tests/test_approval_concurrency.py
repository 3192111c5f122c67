"""Financial Approval under concurrency (PostgreSQL): approvers deciding the same request at once
queue on its row lock, so exactly one decision wins and the others get a clear message; staff
submitting at once queue on the invoice row, so one request is opened.

The calls race through tests/concurrency.py: each thread has its own database connection
(closed when it ends), the threads start together at a barrier and are joined with a timeout,
so a hang fails the test."""

import pytest

from approvals.models import FinancialRequest, RequestKind, RequestStatus
from approvals.rules import (
    ALREADY_OPEN,
    NEEDS_REFUND_REQUEST,
    NOT_OPEN,
    WITHDRAW_NOT_WAITING,
    clinic_policy,
)
from approvals.services import (
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
)
from audit.models import Action, AuditEvent
from billing.breakdown import CreditLineInput
from billing.models import Policy
from refunds.models import CreditNote
from refunds.services import credit_note_create

from .concurrency import as_user, race, unexpected
from .conftest import requires_postgres
from .factories import approver_factory, clerk_factory

DECIDED_PREFIX = "This request was already decided by "

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def invoice(approval_clinic, make_invoice):
    return make_invoice()


@pytest.fixture
def approvers(clinic, roles):
    """Eight distinct financial approvers of the clinic."""
    return [approver_factory(username=f"approver{n}", clinics=[clinic]) for n in range(8)]


def race_to_decide(kind, invoice, clerk, approvers):
    """A request of `kind` waiting for a decision; four approvers approve it and four reject it,
    all at the same time. Returns the request and the eight outcomes (approvals first)."""
    create = refund_request_create if kind == RequestKind.REFUND else (
        cancellation_request_create)
    request = create(invoice=invoice, remarks="Raised for the wrong patient", actor=clerk)

    def approve(approver):
        return lambda: request_approve(financial_request=request, actor=as_user(approver),
                                       remarks="Agreed")

    def reject(approver):
        return lambda: request_reject(financial_request=request, actor=as_user(approver),
                                      remarks="Not agreed")

    calls = [approve(a) for a in approvers[:4]] + [reject(a) for a in approvers[4:]]
    return request, race(*calls)


@pytest.mark.parametrize("kind", [RequestKind.REFUND, RequestKind.CANCELLATION])
def test_eight_approvers_deciding_one_request_at_once_make_exactly_one_decision(
        kind, invoice, clerk, approvers):
    # when eight approvers decide one request at the same time (four approve, four reject)
    request, outcomes = race_to_decide(kind, invoice, clerk, approvers)

    # then exactly one decision was made
    winners = [(index, value) for index, (ok, value) in enumerate(outcomes) if ok]
    assert len(winners) == 1, outcomes
    [(winner_index, decided)] = winners
    winner = approvers[winner_index]
    expected_status = RequestStatus.APPROVED if winner_index < 4 else RequestStatus.REJECTED

    # and the stored request shows that one decision, with one audit event for it
    request.refresh_from_db()
    assert (request.status, request.decided_by) == (expected_status, winner)
    assert decided.pk == request.pk
    assert request.decision_remarks == ("Agreed" if winner_index < 4 else "Not agreed")
    events = AuditEvent.objects.filter(
        object_id=str(request.pk), content_type__app_label="approvals",
        action__in=[Action.REQUEST_APPROVED, Action.REQUEST_REJECTED])
    assert events.count() == 1
    [event] = events
    assert (event.actor_id, event.to_state) == (winner.pk, expected_status)


@pytest.mark.parametrize("kind", [RequestKind.REFUND, RequestKind.CANCELLATION])
def test_the_approvers_who_lose_the_race_are_told_who_decided_first(
        kind, invoice, clerk, approvers):
    # when eight approvers decide one request at the same time (four approve, four reject)
    request, outcomes = race_to_decide(kind, invoice, clerk, approvers)

    # then the seven who lost get the plain refusal naming the winner, not an error
    assert unexpected(outcomes) == []
    request.refresh_from_db()
    refusals = [value.message for ok, value in outcomes if not ok]
    assert len(refusals) == 7
    assert all(message.startswith(DECIDED_PREFIX) for message in refusals), refusals
    assert set(refusals) == {
        f"{DECIDED_PREFIX}{request.decided_by.username}: it is "
        f"{request.get_status_display().lower()}."}


def test_two_clerks_submitting_a_refund_request_at_once_open_exactly_one(
        invoice, clerk, clerk2):
    # when two clerks submit a refund request for the same invoice at the same time
    def submit(user, remarks):
        return lambda: refund_request_create(invoice=invoice, remarks=remarks,
                                             actor=as_user(user))

    outcomes = race(submit(clerk, "Overcharged"), submit(clerk2, "Charged twice"))

    # then exactly one request is open, and the other clerk is told whose it is
    assert unexpected(outcomes) == []
    made = [value for ok, value in outcomes if ok]
    refusals = [value.message for ok, value in outcomes if not ok]
    assert len(made) == 1 == len(refusals)
    [request] = FinancialRequest.objects.filter(invoice=invoice)
    assert request.pk == made[0].pk
    assert request.status == RequestStatus.REQUESTED
    assert refusals == [ALREADY_OPEN.format(
        invoice=invoice, kind="Invoice Refund Request", pk=request.pk, status="requested",
        requester=request.requested_by.username)]
    assert AuditEvent.objects.filter(action=Action.REQUEST_SUBMITTED).count() == 1


def test_eight_clerks_submitting_both_kinds_at_once_open_one_request_of_each(
        invoice, clinic, roles):
    # given eight clerks of the clinic
    clerks = [clerk_factory(username=f"clerk{n}", clinics=[clinic]) for n in range(8)]
    assert clinic_policy(clinic, RequestKind.REFUND) == Policy.APPROVAL
    assert clinic_policy(clinic, RequestKind.CANCELLATION) == Policy.APPROVAL

    # when four submit a refund request and four a cancellation request, all at once
    def submit(create, user):
        return lambda: create(invoice=invoice, remarks="Please", actor=as_user(user))

    calls = ([submit(refund_request_create, c) for c in clerks[:4]]
             + [submit(cancellation_request_create, c) for c in clerks[4:]])
    outcomes = race(*calls)

    # then one of each kind was opened, the six others refused
    assert unexpected(outcomes) == []
    assert sum(ok for ok, _ in outcomes[:4]) == 1
    assert sum(ok for ok, _ in outcomes[4:]) == 1
    assert sorted(FinancialRequest.objects.filter(invoice=invoice).values_list(
        "kind", "status")) == [(RequestKind.CANCELLATION, RequestStatus.REQUESTED),
                               (RequestKind.REFUND, RequestStatus.REQUESTED)]
    assert AuditEvent.objects.filter(action=Action.REQUEST_SUBMITTED).count() == 2


def test_a_requester_withdrawing_while_an_approver_approves_leaves_one_outcome(
        invoice, clerk, approver):
    # given a refund request waiting for a decision
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)

    # when the requester withdraws it while the approver approves it
    outcomes = race(
        lambda: request_withdraw(financial_request=request, actor=as_user(clerk)),
        lambda: request_approve(financial_request=request, actor=as_user(approver)),
    )

    # then one of them happened, and the other was told why it could not
    assert unexpected(outcomes) == []
    (withdrew, withdrawal), (approved, approval) = outcomes
    assert withdrew != approved
    request.refresh_from_db()
    if withdrew:
        assert request.status == RequestStatus.WITHDRAWN
        assert approval.message == NOT_OPEN.format(status="withdrawn")
    else:
        assert (request.status, request.decided_by) == (RequestStatus.APPROVED, approver)
        assert withdrawal.message == WITHDRAW_NOT_WAITING.format(status="approved")
    assert AuditEvent.objects.filter(
        action__in=[Action.REQUEST_WITHDRAWN, Action.REQUEST_APPROVED]).count() == 1


def test_one_approval_carried_out_twice_at_once_is_used_once(
        invoice, clerk, clerk2, approver, clinic, reason):
    # given an approved refund request without proposed lines
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
    request_approve(financial_request=request, actor=approver)
    line_a, line_b = invoice.lines.order_by("position")

    # when two clerks credit a different line each, on the strength of it, at the same time
    def credit(user, line):
        return lambda: credit_note_create(invoice=invoice, lines=[CreditLineInput(line)],
                                          dispute_reason=reason, actor=as_user(user))

    outcomes = race(credit(clerk, line_a), credit(clerk2, line_b))

    # then one credit note was made and consumed the approval; the other needs a new request
    assert unexpected(outcomes) == []
    notes = [value for ok, value in outcomes if ok]
    refusals = [value.message for ok, value in outcomes if not ok]
    assert len(notes) == 1
    assert refusals == [NEEDS_REFUND_REQUEST.format(clinic=clinic.name)]
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert request.credit_note == notes[0]
    assert CreditNote.objects.filter(invoice=invoice).count() == 1
    assert AuditEvent.objects.filter(action=Action.REQUEST_COMPLETED).count() == 1
