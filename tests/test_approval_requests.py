"""Invoice Refund and Cancellation Requests (docs/rules.md §5): submitted by billing staff with
remarks, at most one open per invoice and kind, decided by a financial approver of the clinic who
is not the requester, withdrawn by the requester while waiting; approvers are emailed of new
requests and requesters of decisions, after commit."""

from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from approvals.models import REMARKS_MAX_LENGTH, FinancialRequest, RequestKind, RequestStatus
from approvals.notifications import notifications_muted
from approvals.rules import (
    ALREADY_DECIDED,
    ALREADY_OPEN,
    DIRECT_POLICY,
    NOT_OPEN,
    OWN_REQUEST,
    WITHDRAW_NOT_REQUESTER,
    WITHDRAW_NOT_WAITING,
)
from approvals.services import (
    REJECT_REMARKS,
    REMARKS_REQUIRED,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
)
from audit.models import Action, AuditEvent
from billing.access import NO_PERMISSION, NOT_A_MEMBER
from billing.breakdown import LINE_NOT_ON_INVOICE, LINE_OVER, CreditLineInput
from billing.models import Invoice, InvoiceStatus, Policy
from billing.roles import BILLING_STAFF, FINANCIAL_APPROVERS
from billing.rules import (
    CANCEL_ALREADY,
    CANCEL_DRAFT,
    CANCEL_NOTHING_LEFT,
    CANCEL_PAID,
    INVOICE_CANCELLED,
    INVOICE_DRAFT,
    NOTHING_LEFT,
)
from billing.text import REMARKS_TOO_LONG
from refunds.services import credit_note_create, invoice_cancel

from .factories import UserFactory, approver_factory, clerk_factory, set_policy

D = Decimal

CREATE = {
    RequestKind.REFUND: refund_request_create,
    RequestKind.CANCELLATION: cancellation_request_create,
}
KINDS = [RequestKind.REFUND, RequestKind.CANCELLATION]


@pytest.fixture
def invoice(approval_clinic, make_invoice):
    """An issued, unpaid invoice (28.700 OMR) of a clinic whose refunds and cancellations need
    approval."""
    return make_invoice()


@pytest.fixture
def requested(invoice, clerk):
    """A refund request waiting for a decision."""
    return refund_request_create(invoice=invoice, remarks="Patient was overcharged", actor=clerk)


@pytest.fixture
def dual(clinic, roles):
    """A member who is both billing staff and financial approver."""
    return UserFactory(username="dual", groups=[BILLING_STAFF, FINANCIAL_APPROVERS],
                       clinics=[clinic])


@pytest.fixture
def approver2(clinic, roles):
    return approver_factory(username="approver2", clinics=[clinic])


def request_rows():
    """What a refused request action must leave as it was."""
    return list(FinancialRequest.objects.order_by("pk").values_list(
        "pk", "status", "remarks", "decided_by", "decided_at", "decision_remarks",
        "completed_by"))


@pytest.fixture
def refused_request(refused):
    """refused(), also checking that no request was created or changed."""

    @contextmanager
    def refused_request(message):
        before = request_rows()
        with refused(message) as excinfo:
            yield excinfo
        assert request_rows() == before

    return refused_request


def submit(kind, invoice, actor, remarks="Raised for the wrong patient"):
    return CREATE[kind](invoice=invoice, remarks=remarks, actor=actor)


def invoice_amounts(invoice):
    return Invoice.objects.filter(pk=invoice.pk).values_list(
        "status", "total", "amount_paid", "amount_refunded", "amount_credited").get()


# -- submitting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_staff_submit_a_request_with_remarks(kind, invoice, clerk):
    # when a clerk submits a request with remarks
    request = submit(kind, invoice, clerk, remarks="Raised for the wrong patient")

    # then it waits for a decision
    request.refresh_from_db()
    assert (request.kind, request.status, request.invoice, request.clinic) == (
        kind, RequestStatus.REQUESTED, invoice, invoice.clinic)
    assert (request.requested_by, request.remarks) == (clerk, "Raised for the wrong patient")
    assert request.requested_at is not None
    assert (request.decided_by, request.decided_at, request.completed_by) == (None, None, None)
    event = AuditEvent.objects.get(action=Action.REQUEST_SUBMITTED)
    assert (event.actor, event.object_id, event.invoice_id, event.to_state, event.remarks) == (
        clerk, str(request.pk), invoice.pk, RequestStatus.REQUESTED,
        "Raised for the wrong patient")
    assert event.data == {"kind": kind, "lines": [], "approvals_needed": 1}
    # and the invoice is left as it was
    assert invoice_amounts(invoice) == (InvoiceStatus.ISSUED, D("28.700"), D("0.000"),
                                        D("0.000"), D("0.000"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("remarks", ["", "   ", "\n\t ", None])
def test_a_request_needs_remarks(kind, remarks, invoice, clerk, refused_request):
    with refused_request(REMARKS_REQUIRED):
        submit(kind, invoice, clerk, remarks=remarks)


@pytest.mark.parametrize("kind", KINDS)
def test_remarks_are_trimmed(kind, invoice, clerk):
    request = submit(kind, invoice, clerk, remarks="  \n Duplicate visit  \t")

    request.refresh_from_db()
    assert request.remarks == "Duplicate visit"
    assert AuditEvent.objects.get(action=Action.REQUEST_SUBMITTED).remarks == "Duplicate visit"


@pytest.mark.parametrize("kind", KINDS)
def test_remarks_longer_than_the_limit_are_refused(kind, invoice, clerk, refused_request):
    with refused_request(REMARKS_TOO_LONG.format(limit=REMARKS_MAX_LENGTH)):
        submit(kind, invoice, clerk, remarks="x" * (REMARKS_MAX_LENGTH + 1))


@pytest.mark.parametrize("kind", KINDS)
def test_remarks_of_exactly_the_limit_are_accepted_once_trimmed(kind, invoice, clerk):
    request = submit(kind, invoice, clerk, remarks=f"  {'x' * REMARKS_MAX_LENGTH}  ")
    request.refresh_from_db()
    assert len(request.remarks) == REMARKS_MAX_LENGTH


def test_a_direct_clinic_needs_no_refund_request(clinic, make_invoice, clerk, refused_request):
    invoice = make_invoice()
    with refused_request(DIRECT_POLICY.format(clinic="Muscat Clinic",
                                              what="refunds and credits invoices")):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)


def test_a_direct_clinic_needs_no_cancellation_request(clinic, make_invoice, clerk,
                                                      refused_request):
    invoice = make_invoice()
    with refused_request(DIRECT_POLICY.format(clinic="Muscat Clinic", what="cancels invoices")):
        cancellation_request_create(invoice=invoice, remarks="Duplicate", actor=clerk)


def test_each_policy_is_applied_to_its_own_kind(clinic, make_invoice, clerk, refused_request):
    # given a clinic where refunds need approval and cancellations are direct
    set_policy(clinic, refund=Policy.APPROVAL)
    clinic.save()
    invoice = make_invoice()

    # then a refund request is accepted and a cancellation request is not
    assert refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk).pk
    with refused_request(DIRECT_POLICY.format(clinic="Muscat Clinic", what="cancels invoices")):
        cancellation_request_create(invoice=invoice, remarks="Duplicate", actor=clerk)


# -- one open request per invoice and kind ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_open_request_of_the_same_kind_is_refused(
        kind, invoice, clerk, clerk2, refused_request):
    first = submit(kind, invoice, clerk)
    label = "Invoice Refund Request" if kind == RequestKind.REFUND else (
        "Invoice Cancellation Request")

    with refused_request(ALREADY_OPEN.format(invoice=invoice, kind=label, pk=first.pk,
                                             status="requested", requester="clerk")):
        submit(kind, invoice, clerk2)


def test_a_second_request_is_refused_while_the_first_is_approved(
        invoice, requested, clerk2, approver, refused_request):
    request_approve(financial_request=requested, actor=approver)

    message = (f"{invoice} already has an open Invoice Refund Request (#{requested.pk}, approved,"
               " by clerk). Wait for its decision, or withdraw it first.")
    with refused_request(message):
        refund_request_create(invoice=invoice, remarks="Again", actor=clerk2)


def test_a_refund_request_and_a_cancellation_request_may_be_open_together(invoice, clerk):
    refund = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
    cancellation = cancellation_request_create(invoice=invoice, remarks="Duplicate", actor=clerk)

    assert {(r.kind, r.status) for r in FinancialRequest.objects.filter(invoice=invoice)} == {
        (RequestKind.REFUND, RequestStatus.REQUESTED),
        (RequestKind.CANCELLATION, RequestStatus.REQUESTED)}
    assert refund.pk != cancellation.pk


def test_each_invoice_has_its_own_open_request(approval_clinic, make_invoice, clerk):
    first, second = make_invoice(), make_invoice()
    refund_request_create(invoice=first, remarks="Overcharged", actor=clerk)
    refund_request_create(invoice=second, remarks="Overcharged", actor=clerk)
    assert FinancialRequest.objects.filter(status=RequestStatus.REQUESTED).count() == 2


@pytest.mark.parametrize("how", ["rejected", "withdrawn", "completed"])
def test_a_new_request_may_follow_one_that_was_closed(
        how, invoice, requested, clerk, approver, reason):
    # given a refund request that was rejected, withdrawn, or approved and carried out
    if how == "rejected":
        request_reject(financial_request=requested, actor=approver, remarks="No")
    elif how == "withdrawn":
        request_withdraw(financial_request=requested, actor=clerk)
    else:
        request_approve(financial_request=requested, actor=approver)
        line_b = invoice.lines.order_by("position").last()
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                           actor=clerk)
    requested.refresh_from_db()
    assert requested.status == how

    # when staff submit a new one, then it is accepted
    new = refund_request_create(invoice=invoice, remarks="Second thoughts", actor=clerk)
    assert new.pk != requested.pk
    assert new.status == RequestStatus.REQUESTED
    assert AuditEvent.objects.filter(action=Action.REQUEST_SUBMITTED).count() == 2


def test_the_database_refuses_a_second_open_request(invoice, requested, clerk):
    with pytest.raises(IntegrityError), transaction.atomic():
        FinancialRequest.objects.create(
            clinic=invoice.clinic, invoice=invoice, kind=RequestKind.REFUND,
            remarks="Sneaked in", requested_by=clerk)
    assert FinancialRequest.objects.count() == 1


def test_the_database_allows_a_closed_request_next_to_an_open_one(invoice, requested, clerk):
    # the unique index covers open requests only
    FinancialRequest.objects.create(
        clinic=invoice.clinic, invoice=invoice, kind=RequestKind.REFUND, remarks="Old",
        requested_by=clerk, status=RequestStatus.WITHDRAWN)
    assert FinancialRequest.objects.count() == 2


def test_the_database_refuses_a_request_without_remarks(invoice, clerk):
    with pytest.raises(IntegrityError), transaction.atomic():
        FinancialRequest.objects.create(
            clinic=invoice.clinic, invoice=invoice, kind=RequestKind.REFUND, remarks="",
            requested_by=clerk)


# -- what may be requested ------------------------------------------------------------------------


def test_a_cancellation_request_on_a_draft_is_refused(
        approval_clinic, make_invoice, clerk, refused_request):
    draft = make_invoice(issue=False)
    with refused_request(CANCEL_DRAFT):
        cancellation_request_create(invoice=draft, remarks="Duplicate", actor=clerk)


def test_a_cancellation_request_with_unrefunded_money_is_refused(
        invoice, pay, clerk, refused_request):
    pay(invoice, "10.000")
    with refused_request(CANCEL_PAID.format(amount="10.000 OMR", invoice=invoice)):
        cancellation_request_create(invoice=invoice, remarks="Duplicate", actor=clerk)


def test_a_cancellation_request_on_a_cancelled_invoice_is_refused(
        clinic, make_invoice, clerk, refused_request):
    # given an invoice cancelled while the clinic cancelled directly
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Duplicate", actor=clerk)
    set_policy(clinic, cancellation=Policy.APPROVAL)
    clinic.save()

    with refused_request(CANCEL_ALREADY.format(invoice=invoice)):
        cancellation_request_create(invoice=invoice, remarks="Duplicate", actor=clerk)


def test_a_cancellation_request_on_a_fully_credited_invoice_is_refused(
        clinic, make_invoice, clerk, reason, refused_request):
    invoice = make_invoice()
    credit_note_create(invoice=invoice,
                       lines=[CreditLineInput(line) for line in invoice.lines.all()],
                       dispute_reason=reason, actor=clerk)
    set_policy(clinic, cancellation=Policy.APPROVAL)
    clinic.save()

    with refused_request(CANCEL_NOTHING_LEFT.format(invoice=invoice)):
        cancellation_request_create(invoice=invoice, remarks="Duplicate", actor=clerk)


def test_a_refund_request_on_a_draft_is_refused(
        approval_clinic, make_invoice, clerk, refused_request):
    draft = make_invoice(issue=False)
    with refused_request(INVOICE_DRAFT):
        refund_request_create(invoice=draft, remarks="Overcharged", actor=clerk)


def test_a_refund_request_on_a_cancelled_invoice_is_refused(
        clinic, make_invoice, clerk, refused_request):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Duplicate", actor=clerk)
    set_policy(clinic, refund=Policy.APPROVAL)
    clinic.save()

    with refused_request(INVOICE_CANCELLED.format(invoice=invoice)):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)


def test_a_refund_request_on_a_fully_refunded_invoice_is_refused(
        clinic, make_invoice, pay, clerk, reason, refused_request):
    invoice = make_invoice()
    pay(invoice, "28.700")
    credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
    set_policy(clinic, refund=Policy.APPROVAL)
    clinic.save()

    with refused_request(NOTHING_LEFT.format(invoice=invoice)):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)


def test_a_refund_request_on_a_fully_credited_invoice_is_refused(
        clinic, make_invoice, clerk, reason, refused_request):
    invoice = make_invoice()
    credit_note_create(invoice=invoice,
                       lines=[CreditLineInput(line) for line in invoice.lines.all()],
                       dispute_reason=reason, actor=clerk)
    set_policy(clinic, refund=Policy.APPROVAL)
    clinic.save()

    with refused_request(NOTHING_LEFT.format(invoice=invoice)):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)


def test_proposed_lines_of_another_invoice_are_refused(
        approval_clinic, make_invoice, clerk, refused_request):
    invoice, other = make_invoice(), make_invoice()
    foreign_line = other.lines.first()

    with refused_request(LINE_NOT_ON_INVOICE.format(invoice=invoice)):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk,
                              lines=[CreditLineInput(foreign_line, D("1.000"))])


def test_proposed_lines_beyond_what_remains_are_refused(invoice, clerk, refused_request):
    line_b = invoice.lines.order_by("position").last()
    with refused_request(LINE_OVER.format(remaining="7.333 OMR", amount="7.334 OMR",
                                          line=line_b)):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk,
                              lines=[CreditLineInput(line_b, D("7.334"))])


def test_proposed_lines_are_stored_with_the_request(invoice, clerk):
    line_a, line_b = invoice.lines.order_by("position")

    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk,
                                    lines=[CreditLineInput(line_b, D("2.500")),
                                           CreditLineInput(line_a)])

    assert sorted(request.lines.values_list("invoice_line", "amount")) == sorted([
        (line_a.pk, D("20.000")), (line_b.pk, D("2.500"))])
    event = AuditEvent.objects.get(action=Action.REQUEST_SUBMITTED)
    assert event.amount == D("22.500")


def test_an_outsider_cannot_submit_a_request(invoice, outsider, refused_request):
    for create in CREATE.values():
        with refused_request(NOT_A_MEMBER.format(clinic="Muscat Clinic")):
            create(invoice=invoice, remarks="Overcharged", actor=outsider)


def test_an_approver_cannot_submit_a_request(invoice, approver, refused_request):
    for create in CREATE.values():
        with refused_request(NO_PERMISSION.format(action="submit requests")):
            create(invoice=invoice, remarks="Overcharged", actor=approver)


# -- deciding --------------------------------------------------------------------------------------


def test_an_approver_of_the_clinic_approves_a_request(invoice, requested, approver):
    before = invoice_amounts(invoice)

    request = request_approve(financial_request=requested, actor=approver,
                              remarks="  Agreed with patient ")

    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert (request.decided_by, request.decision_remarks) == (approver, "Agreed with patient")
    assert request.decided_at is not None
    event = AuditEvent.objects.get(action=Action.REQUEST_APPROVED)
    assert (event.actor, event.object_id, event.from_state, event.to_state, event.remarks) == (
        approver, str(request.pk), RequestStatus.REQUESTED, RequestStatus.APPROVED,
        "Agreed with patient")
    assert event.invoice_id == invoice.pk
    # approving changes nothing on the invoice by itself
    assert invoice_amounts(invoice) == before


def test_approval_remarks_are_optional(requested, approver):
    request = request_approve(financial_request=requested, actor=approver)
    request.refresh_from_db()
    assert (request.status, request.decision_remarks) == (RequestStatus.APPROVED, "")


def test_approval_remarks_longer_than_the_limit_are_refused(requested, approver,
                                                           refused_request):
    with refused_request(REMARKS_TOO_LONG.format(limit=REMARKS_MAX_LENGTH)):
        request_approve(financial_request=requested, actor=approver,
                        remarks="x" * (REMARKS_MAX_LENGTH + 1))


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_the_requester_cannot_decide_their_own_request(decide, invoice, dual, refused_request):
    # given a member who is both staff and approver, and submitted the request
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=dual)

    # when they decide it, then they are refused
    with refused_request(OWN_REQUEST):
        if decide == "approve":
            request_approve(financial_request=request, actor=dual, remarks="Fine by me")
        else:
            request_reject(financial_request=request, actor=dual, remarks="Changed my mind")


def test_the_database_refuses_a_request_decided_by_its_requester(requested, clerk):
    with pytest.raises(IntegrityError), transaction.atomic():
        FinancialRequest.objects.filter(pk=requested.pk).update(
            decided_by=F("requested_by"), status=RequestStatus.APPROVED)
    requested.refresh_from_db()
    assert (requested.status, requested.decided_by) == (RequestStatus.REQUESTED, None)


def test_the_database_refuses_a_rejection_without_remarks(requested, approver):
    with pytest.raises(IntegrityError), transaction.atomic():
        FinancialRequest.objects.filter(pk=requested.pk).update(
            decided_by=approver, status=RequestStatus.REJECTED, decision_remarks="")


def test_an_approver_of_another_clinic_cannot_decide(requested, other_approver, refused_request):
    with refused_request(NOT_A_MEMBER.format(clinic="Muscat Clinic")):
        request_approve(financial_request=requested, actor=other_approver)
    with refused_request(NOT_A_MEMBER.format(clinic="Muscat Clinic")):
        request_reject(financial_request=requested, actor=other_approver, remarks="No")


def test_a_clerk_cannot_decide(requested, clerk2, refused_request):
    message = NO_PERMISSION.format(action="approve or reject financial requests")
    with refused_request(message):
        request_approve(financial_request=requested, actor=clerk2)
    with refused_request(message):
        request_reject(financial_request=requested, actor=clerk2, remarks="No")


@pytest.mark.parametrize("remarks", ["", "   ", None])
def test_a_rejection_needs_remarks(remarks, requested, approver, refused_request):
    with refused_request(REJECT_REMARKS):
        request_reject(financial_request=requested, actor=approver, remarks=remarks)


def test_a_rejection_leaves_the_invoice_as_it_was(invoice, pay, clerk, approver):
    # given a part-paid invoice with a refund request
    pay(invoice, "10.000")
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
    before = invoice_amounts(invoice)
    lines_before = list(invoice.lines.values_list("pk", "credited_net", "credited_tax"))

    # when the approver rejects it
    request = request_reject(financial_request=request, actor=approver,
                             remarks=" The price was right ")

    # then it is rejected, and the invoice is untouched
    request.refresh_from_db()
    assert (request.status, request.decided_by, request.decision_remarks) == (
        RequestStatus.REJECTED, approver, "The price was right")
    assert request.decided_at is not None
    assert invoice_amounts(invoice) == before == (
        InvoiceStatus.PARTIALLY_PAID, D("28.700"), D("10.000"), D("0.000"), D("0.000"))
    assert list(invoice.lines.values_list("pk", "credited_net", "credited_tax")) == lines_before
    assert not invoice.credit_notes.exists()
    event = AuditEvent.objects.get(action=Action.REQUEST_REJECTED)
    assert (event.actor, event.from_state, event.to_state, event.remarks) == (
        approver, RequestStatus.REQUESTED, RequestStatus.REJECTED, "The price was right")


def test_a_rejected_request_can_never_be_approved(requested, approver, approver2,
                                                  refused_request):
    request_reject(financial_request=requested, actor=approver, remarks="No")

    with refused_request("This request was already decided by approver: it is rejected."):
        request_approve(financial_request=requested, actor=approver2)
    with refused_request(ALREADY_DECIDED.format(who="approver", status="rejected")):
        request_approve(financial_request=requested, actor=approver)


def test_approving_twice_is_refused(requested, approver, approver2, refused_request):
    request_approve(financial_request=requested, actor=approver)

    with refused_request(ALREADY_DECIDED.format(who="approver", status="approved")):
        request_approve(financial_request=requested, actor=approver)
    with refused_request(ALREADY_DECIDED.format(who="approver", status="approved")):
        request_reject(financial_request=requested, actor=approver2, remarks="Too late")
    assert AuditEvent.objects.filter(action__in=[Action.REQUEST_APPROVED,
                                                 Action.REQUEST_REJECTED]).count() == 1


def test_a_completed_request_cannot_be_decided_again(invoice, requested, clerk, approver,
                                                     reason, refused_request):
    request_approve(financial_request=requested, actor=approver)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(invoice.lines.last())],
                       dispute_reason=reason, actor=clerk)

    with refused_request(ALREADY_DECIDED.format(who="approver", status="completed")):
        request_reject(financial_request=requested, actor=approver, remarks="Oops")


# -- withdrawing -----------------------------------------------------------------------------------


def test_the_requester_withdraws_a_waiting_request(invoice, requested, clerk):
    request = request_withdraw(financial_request=requested, actor=clerk)

    request.refresh_from_db()
    assert request.status == RequestStatus.WITHDRAWN
    assert request.decided_by is None
    event = AuditEvent.objects.get(action=Action.REQUEST_WITHDRAWN)
    assert (event.actor, event.object_id, event.from_state, event.to_state) == (
        clerk, str(request.pk), RequestStatus.REQUESTED, RequestStatus.WITHDRAWN)
    assert event.invoice_id == invoice.pk


def test_only_the_requester_can_withdraw(requested, clerk2, approver, refused_request):
    for actor in (clerk2, approver):
        with refused_request(WITHDRAW_NOT_REQUESTER.format(who="clerk")):
            request_withdraw(financial_request=requested, actor=actor)


def test_an_outsider_cannot_withdraw(requested, outsider, refused_request):
    with refused_request(NOT_A_MEMBER.format(clinic="Muscat Clinic")):
        request_withdraw(financial_request=requested, actor=outsider)


@pytest.mark.parametrize("decision", ["approved", "rejected"])
def test_only_a_waiting_request_can_be_withdrawn(decision, requested, clerk, approver,
                                                 refused_request):
    if decision == "approved":
        request_approve(financial_request=requested, actor=approver)
    else:
        request_reject(financial_request=requested, actor=approver, remarks="No")

    with refused_request(WITHDRAW_NOT_WAITING.format(status=decision)):
        request_withdraw(financial_request=requested, actor=clerk)


def test_a_withdrawn_request_cannot_be_withdrawn_again(requested, clerk, refused_request):
    request_withdraw(financial_request=requested, actor=clerk)
    with refused_request(WITHDRAW_NOT_WAITING.format(status="withdrawn")):
        request_withdraw(financial_request=requested, actor=clerk)


def test_a_withdrawn_request_cannot_be_decided(requested, clerk, approver, refused_request):
    request_withdraw(financial_request=requested, actor=clerk)

    with refused_request(NOT_OPEN.format(status="withdrawn")):
        request_approve(financial_request=requested, actor=approver)
    with refused_request(NOT_OPEN.format(status="withdrawn")):
        request_reject(financial_request=requested, actor=approver, remarks="No")


# -- notifications ---------------------------------------------------------------------------------


@pytest.fixture
def audience(clinic, other_clinic, roles):
    """Who might be emailed about the clinic's requests."""
    return {
        "approver2": approver_factory(username="approver2", clinics=[clinic]),
        "no_email": approver_factory(username="no_email", email="", clinics=[clinic]),
        "inactive": approver_factory(username="inactive", is_active=False, clinics=[clinic]),
        "elsewhere": approver_factory(username="elsewhere", clinics=[other_clinic]),
        "staff": clerk_factory(username="staff", clinics=[clinic]),
    }


def test_a_new_request_emails_the_clinics_approvers(
        invoice, dual, approver, audience, mailoutbox, django_capture_on_commit_callbacks):
    # given approvers of the clinic (one without email), an approver of another clinic, staff,
    # and a requester who is an approver too

    # when the requester submits a refund request
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        request = refund_request_create(invoice=invoice, remarks="Charged twice for X-ray",
                                        actor=dual)

    # then one email goes to the clinic's other approvers with an address
    assert len(callbacks) == 1
    [mail] = mailoutbox
    assert sorted(mail.to) == ["approver2@clinic.test", "approver@clinic.test"]
    assert invoice.number in mail.subject
    assert "Invoice Refund Request" in mail.subject
    assert invoice.number in mail.body
    assert "Charged twice for X-ray" in mail.body
    assert f"#{request.pk}" in mail.body
    # with a link straight to the request (SITE_URL)
    assert f"http://127.0.0.1:8000/approvals/{request.pk}/" in mail.body


def test_a_new_request_email_lists_the_proposed_lines(
        invoice, clerk, approver, mailoutbox, django_capture_on_commit_callbacks):
    line_b = invoice.lines.order_by("position").last()
    with django_capture_on_commit_callbacks(execute=True):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk,
                              lines=[CreditLineInput(line_b, D("2.500"))])

    [mail] = mailoutbox
    assert mail.to == ["approver@clinic.test"]
    assert "Item 2: 2.500 OMR without tax" in mail.body


def test_a_cancellation_request_emails_the_approvers(
        invoice, clerk, approver, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        cancellation_request_create(invoice=invoice, remarks="Wrong patient", actor=clerk)

    [mail] = mailoutbox
    assert mail.to == ["approver@clinic.test"]
    assert "Invoice Cancellation Request" in mail.subject
    assert "Wrong patient" in mail.body


@pytest.mark.parametrize("decide, word", [("approve", "approved"), ("reject", "rejected")])
def test_a_decision_emails_the_requester(
        decide, word, invoice, requested, approver, mailoutbox,
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        if decide == "approve":
            request_approve(financial_request=requested, actor=approver, remarks="Agreed")
        else:
            request_reject(financial_request=requested, actor=approver, remarks="Agreed")

    assert len(callbacks) == 1
    [mail] = mailoutbox
    assert mail.to == ["clerk@clinic.test"]
    assert word in mail.subject
    assert invoice.number in mail.subject
    assert "Remarks: Agreed" in mail.body


def test_a_decision_is_not_emailed_to_a_requester_without_an_address(
        invoice, clinic, roles, approver, mailoutbox, django_capture_on_commit_callbacks):
    silent = clerk_factory(username="silent", email="", clinics=[clinic])
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=silent)

    with django_capture_on_commit_callbacks(execute=True):
        request_approve(financial_request=request, actor=approver)

    assert mailoutbox == []


def test_a_withdrawal_emails_nobody(requested, clerk, approver, mailoutbox,
                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request_withdraw(financial_request=requested, actor=clerk)
    assert mailoutbox == []


def test_nothing_is_emailed_when_the_request_is_rolled_back(
        invoice, clerk, approver, mailoutbox, django_capture_on_commit_callbacks):
    # when a request is submitted inside a transaction that then fails
    with (django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError), transaction.atomic()):
        refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
        raise RuntimeError("the screen crashed")

    # then the request is gone and nobody was told of it
    assert callbacks == []
    assert mailoutbox == []
    assert not FinancialRequest.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.REQUEST_SUBMITTED).exists()


def test_nothing_is_emailed_when_the_decision_is_rolled_back(
        requested, approver, mailoutbox, django_capture_on_commit_callbacks):
    with (django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError), transaction.atomic()):
        request_approve(financial_request=requested, actor=approver)
        raise RuntimeError("the screen crashed")

    assert callbacks == []
    assert mailoutbox == []
    requested.refresh_from_db()
    assert requested.status == RequestStatus.REQUESTED


def test_muted_notifications_send_nothing(
        invoice, clerk, approver, mailoutbox, django_capture_on_commit_callbacks):
    with notifications_muted(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
        request_approve(financial_request=request, actor=approver)

    assert callbacks == []  # no email was even queued
    assert mailoutbox == []
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


def test_a_mail_server_failure_does_not_undo_the_request(
        invoice, clerk, approver, mailoutbox, django_capture_on_commit_callbacks, monkeypatch):
    from approvals import notifications

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(notifications, "send_mail", broken)
    with django_capture_on_commit_callbacks(execute=True):
        request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)

    request.refresh_from_db()
    assert request.status == RequestStatus.REQUESTED
    assert mailoutbox == []

