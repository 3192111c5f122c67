"""The approval gate (docs/rules.md §5): in a clinic whose policy needs approval, a refund,
credit or cancellation is carried out only on the strength of an approved request of the right
kind, which it consumes (the request becomes `completed`) in the same transaction as the credit
note."""

from decimal import Decimal

import pytest

from approvals import gate
from approvals.gate import LINE_NOT_APPROVED, LINE_OVER_APPROVED
from approvals.models import FinancialRequest, RequestKind, RequestStatus
from approvals.rules import (
    AWAITING_DECISION,
    NEEDS_CANCELLATION_REQUEST,
    NEEDS_REFUND_REQUEST,
    OPEN_REFUND_REQUEST,
    REQUEST_NOT_APPROVED,
    REQUEST_OTHER_INVOICE,
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
from billing.models import InvoiceStatus, Policy
from billing.money import format_money
from refunds import services as refund_services
from refunds.models import CreditNote, CreditNoteKind
from refunds.services import credit_note_create, credit_note_preview, invoice_cancel

from .conftest import ledger_state
from .factories import DisputeReasonFactory, set_policy

D = Decimal


@pytest.fixture
def unpaid(approval_clinic, make_invoice):
    """An issued, unpaid invoice of the approval clinic: line A 2 × 10.000, line B 1 × 7.333,
    5 % VAT (28.700 OMR)."""
    return make_invoice()


@pytest.fixture
def paid(approval_clinic, make_invoice, pay):
    """The same invoice, paid in full in cash."""
    invoice = make_invoice()
    pay(invoice, "28.700")
    return invoice


def lines_of(invoice):
    line_a, line_b = invoice.lines.order_by("position")
    return line_a, line_b


def approved_refund_request(invoice, *, clerk, approver, lines=None):
    request = refund_request_create(invoice=invoice, remarks="Patient was overcharged",
                                    actor=clerk, lines=lines)
    return request_approve(financial_request=request, actor=approver, remarks="OK")


def approved_cancellation_request(invoice, *, clerk, approver):
    request = cancellation_request_create(invoice=invoice, remarks="Raised for the wrong patient",
                                          actor=clerk)
    return request_approve(financial_request=request, actor=approver, remarks="OK")


def request_state(request):
    request.refresh_from_db()
    return request.status, request.completed_by_id, request.completed_at


def money(amount):
    return format_money(D(amount), "OMR")


def assert_completed_by(request, note, actor):
    """The request was consumed by the credit note: completed, linked, and audited."""
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert request.completed_by == actor
    assert request.completed_at is not None
    assert note.approval_request == request
    assert request.credit_note == note
    event = AuditEvent.objects.get(action=Action.REQUEST_COMPLETED, object_id=str(request.pk))
    assert (event.actor, event.from_state, event.to_state, event.amount) == (
        actor, RequestStatus.APPROVED, RequestStatus.COMPLETED, note.amount)
    assert event.invoice_id == note.invoice_id
    assert event.data == {"credit_note": note.number}


# -- direct clinics -------------------------------------------------------------------------------


def test_a_direct_clinic_refunds_credits_and_cancels_without_a_request(
        clinic, make_invoice, pay, clerk, reason):
    # given a clinic whose refunds and cancellations are direct
    assert clinic_policy(clinic, RequestKind.REFUND) == Policy.DIRECT
    assert clinic_policy(clinic, RequestKind.CANCELLATION) == Policy.DIRECT
    to_refund, to_credit, to_cancel = make_invoice(), make_invoice(), make_invoice()
    pay(to_refund, "28.700")

    # when staff refund, credit and cancel at once
    refund = credit_note_create(full=True, invoice=to_refund, dispute_reason=reason, actor=clerk)
    credit = credit_note_create(invoice=to_credit, lines=[CreditLineInput(lines_of(to_credit)[1])],
                                dispute_reason=reason, actor=clerk)
    cancellation = invoice_cancel(invoice=to_cancel, remarks="Duplicate", actor=clerk)

    # then each is done, authorised by no request
    assert [note.kind for note in (refund, credit, cancellation)] == [
        CreditNoteKind.REFUND, CreditNoteKind.CREDIT, CreditNoteKind.CANCELLATION]
    assert [note.approval_request for note in (refund, credit, cancellation)] == [None, None, None]
    assert not FinancialRequest.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="request.").exists()
    to_cancel.refresh_from_db()
    assert to_cancel.status == InvoiceStatus.CANCELLED


# -- approval clinics: no request, or not yet approved --------------------------------------------


def test_an_approval_clinic_refuses_a_refund_without_a_request(paid, clerk, reason, refused):
    with refused(NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic")):
        credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)


def test_an_approval_clinic_refuses_a_credit_without_a_request(unpaid, clerk, reason, refused):
    _, line_b = lines_of(unpaid)
    with refused(NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic")):
        credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                           actor=clerk)


def test_an_approval_clinic_refuses_a_cancellation_without_a_request(unpaid, clerk, refused):
    with refused(NEEDS_CANCELLATION_REQUEST.format(clinic="Muscat Clinic")):
        invoice_cancel(invoice=unpaid, remarks="Duplicate", actor=clerk)


def test_an_approved_request_of_the_other_kind_authorises_nothing(
        unpaid, clerk, approver, reason, refused):
    # given an approved cancellation request
    approved_cancellation_request(unpaid, clerk=clerk, approver=approver)
    _, line_b = lines_of(unpaid)

    # when staff credit a line, then a refund request is still needed
    with refused(NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic")):
        credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                           actor=clerk)


def test_a_refund_is_refused_while_its_request_awaits_a_decision(
        paid, clerk, reason, refused):
    # given a refund request not yet decided
    request = refund_request_create(invoice=paid, remarks="Patient was overcharged", actor=clerk)

    # when staff refund, then they are told to wait for the decision
    with refused(AWAITING_DECISION.format(kind="Invoice Refund Request", invoice=paid)):
        credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)
    assert request_state(request) == (RequestStatus.REQUESTED, None, None)


def test_a_cancellation_is_refused_while_its_request_awaits_a_decision(unpaid, clerk, refused):
    request = cancellation_request_create(invoice=unpaid, remarks="Duplicate", actor=clerk)

    with refused(AWAITING_DECISION.format(kind="Invoice Cancellation Request", invoice=unpaid)):
        invoice_cancel(invoice=unpaid, remarks="Duplicate", actor=clerk)
    assert request_state(request) == (RequestStatus.REQUESTED, None, None)


def test_a_rejected_request_leaves_the_refund_refused(paid, clerk, approver, reason, refused):
    request = refund_request_create(invoice=paid, remarks="Patient was overcharged", actor=clerk)
    request_reject(financial_request=request, actor=approver, remarks="The price was right")

    with refused(NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic")):
        credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)


# -- approval clinics: carried out after approval -------------------------------------------------


def test_an_approved_refund_request_authorises_a_full_refund_and_is_completed_with_it(
        paid, clerk, approver, reason):
    # given an approved refund request without proposed lines
    request = approved_refund_request(paid, clerk=clerk, approver=approver)
    assert not request.lines.exists()

    # when staff refund the invoice in full
    note = credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)

    # then the refund is made, and the request is consumed by it
    assert (note.kind, note.amount, note.amount_unapplied) == (
        CreditNoteKind.REFUND, D("28.700"), D("28.700"))
    paid.refresh_from_db()
    assert paid.status == InvoiceStatus.REFUNDED
    assert AuditEvent.objects.filter(action=Action.CREDIT_NOTE_ISSUED,
                                     object_id=str(note.pk)).exists()
    assert_completed_by(request, note, clerk)


def test_an_approved_refund_request_authorises_a_credit(unpaid, clerk, approver, reason):
    request = approved_refund_request(unpaid, clerk=clerk, approver=approver)
    _, line_b = lines_of(unpaid)

    note = credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_b)],
                              dispute_reason=reason,
                              actor=clerk)

    assert (note.kind, note.amount) == (CreditNoteKind.CREDIT, D("7.700"))
    unpaid.refresh_from_db()
    assert unpaid.balance_due == D("21.000")
    assert_completed_by(request, note, clerk)


def test_another_member_of_staff_may_carry_out_the_approved_request(
        paid, clerk, clerk2, approver, reason):
    request = approved_refund_request(paid, clerk=clerk, approver=approver)

    note = credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk2)

    assert_completed_by(request, note, clerk2)


def test_the_request_passed_explicitly_is_the_one_completed(paid, clerk, approver, reason):
    request = approved_refund_request(paid, clerk=clerk, approver=approver)

    note = credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk,
                              approval_request=request)

    assert_completed_by(request, note, clerk)


def test_the_approval_is_consumed_so_a_second_refund_needs_a_new_request(
        unpaid, clerk, approver, reason, refused):
    # given a refund request approved and carried out on line B
    request = approved_refund_request(unpaid, clerk=clerk, approver=approver)
    line_a, line_b = lines_of(unpaid)
    credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk)

    # when staff credit line A too, then a new request is needed
    with refused(NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic")):
        credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_a)], dispute_reason=reason,
                           actor=clerk)
    assert request_state(request)[0] == RequestStatus.COMPLETED

    # and with a new approved request, it can be done
    second = approved_refund_request(unpaid, clerk=clerk, approver=approver)
    note = credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_a)],
                              dispute_reason=reason,
                              actor=clerk)
    assert_completed_by(second, note, clerk)


def test_an_approved_cancellation_request_authorises_the_cancellation(unpaid, clerk, approver):
    # given an approved cancellation request
    request = approved_cancellation_request(unpaid, clerk=clerk, approver=approver)

    # when staff cancel the invoice
    note = invoice_cancel(invoice=unpaid, remarks="Raised for the wrong patient", actor=clerk)

    # then it is cancelled and the request completed with the cancellation credit note
    assert (note.kind, note.amount) == (CreditNoteKind.CANCELLATION, D("28.700"))
    unpaid.refresh_from_db()
    assert unpaid.status == InvoiceStatus.CANCELLED
    assert unpaid.balance_due == D("0.000")
    event = AuditEvent.objects.get(action=Action.INVOICE_CANCELLED)
    assert (event.from_state, event.to_state) == (InvoiceStatus.ISSUED, InvoiceStatus.CANCELLED)
    assert_completed_by(request, note, clerk)


# -- the same transaction -------------------------------------------------------------------------


def test_a_refusal_when_carrying_out_leaves_the_request_approved(
        paid, clerk, approver, reason, refused):
    # given an approved request for 5.000 on line A
    line_a, _ = lines_of(paid)
    request = approved_refund_request(paid, clerk=clerk, approver=approver,
                                      lines=[CreditLineInput(line_a, D("5.000"))])

    # when staff try 5.001, then they are refused
    with refused(LINE_OVER_APPROVED.format(approved=money("5.000"), amount=money("5.001"),
                                           line=line_a)):
        credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("5.001"))],
                           dispute_reason=reason,
                           actor=clerk)

    # and the request is still approved, ready for a refund within it
    assert request_state(request) == (RequestStatus.APPROVED, None, None)
    note = credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("5.000"))],
                              dispute_reason=reason,
                              actor=clerk)
    assert_completed_by(request, note, clerk)


def test_a_cancellation_refused_after_the_gate_leaves_its_request_approved(
        unpaid, clerk, approver, refused):
    # given an approved cancellation request, and a dispute reason no longer in use
    request = approved_cancellation_request(unpaid, clerk=clerk, approver=approver)
    retired = DisputeReasonFactory(name="Retired reason", is_active=False)

    # when staff cancel with that reason, then the cancellation is refused
    with refused(refund_services.REASON_INACTIVE.format(reason="Retired reason")):
        invoice_cancel(invoice=unpaid, remarks="Duplicate", actor=clerk, dispute_reason=retired)

    # and the request is still approved
    assert request_state(request) == (RequestStatus.APPROVED, None, None)


def test_a_failure_after_the_completion_rolls_the_completion_back(
        paid, clerk, approver, reason, monkeypatch):
    # given an approved request, and a crash while the refund rows are being written (after
    # the request was marked completed)
    request = approved_refund_request(paid, clerk=clerk, approver=approver)
    record = refund_services.audit_event_record

    def crash_on_refund_created(**kwargs):
        if kwargs["action"] == Action.REFUND_CREATED:
            raise RuntimeError("database went away")
        return record(**kwargs)

    monkeypatch.setattr(refund_services, "audit_event_record", crash_on_refund_created)
    before = ledger_state()

    # when staff refund
    with pytest.raises(RuntimeError):
        credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)

    # then nothing happened: no credit note, and the request is still approved
    assert ledger_state() == before
    assert not CreditNote.objects.exists()
    assert request_state(request) == (RequestStatus.APPROVED, None, None)
    assert not AuditEvent.objects.filter(action=Action.REQUEST_COMPLETED).exists()


def test_a_failure_to_complete_the_request_rolls_the_credit_note_back(
        paid, clerk, approver, reason, monkeypatch):
    request = approved_refund_request(paid, clerk=clerk, approver=approver)
    record = gate.audit_event_record

    def crash_on_completed(**kwargs):
        if kwargs["action"] == Action.REQUEST_COMPLETED:
            raise RuntimeError("database went away")
        return record(**kwargs)

    monkeypatch.setattr(gate, "audit_event_record", crash_on_completed)
    before = ledger_state()

    with pytest.raises(RuntimeError):
        credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)

    assert ledger_state() == before
    assert not CreditNote.objects.exists()
    assert request_state(request) == (RequestStatus.APPROVED, None, None)


# -- a request passed explicitly ------------------------------------------------------------------


def test_a_request_of_another_invoice_is_refused(
        approval_clinic, make_invoice, pay, clerk, approver, reason, refused):
    # given two paid invoices, the second with an approved refund request
    first, second = make_invoice(), make_invoice()
    pay(first, "28.700")
    pay(second, "28.700")
    request = approved_refund_request(second, clerk=clerk, approver=approver)

    # when staff refund the first with it, then they are refused
    with refused(REQUEST_OTHER_INVOICE.format(request=request)):
        credit_note_create(full=True, invoice=first, dispute_reason=reason, actor=clerk,
                           approval_request=request)
    assert request_state(request) == (RequestStatus.APPROVED, None, None)


def test_a_cancellation_request_cannot_authorise_a_credit(
        unpaid, clerk, approver, reason, refused):
    request = approved_cancellation_request(unpaid, clerk=clerk, approver=approver)
    _, line_b = lines_of(unpaid)

    with refused(REQUEST_OTHER_INVOICE.format(request=request)):
        credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                           actor=clerk, approval_request=request)
    assert request_state(request) == (RequestStatus.APPROVED, None, None)


def test_a_refund_request_cannot_authorise_a_cancellation(unpaid, clerk, approver, refused):
    request = approved_refund_request(unpaid, clerk=clerk, approver=approver)

    with refused(REQUEST_OTHER_INVOICE.format(request=request)):
        invoice_cancel(invoice=unpaid, remarks="Duplicate", actor=clerk, approval_request=request)
    assert request_state(request) == (RequestStatus.APPROVED, None, None)


def test_a_request_of_another_invoice_is_refused_in_a_direct_clinic_too(
        clinic, make_invoice, pay, clerk, approver, reason, refused):
    # given a request approved while the clinic needed approval, then the clinic went direct
    first, second = make_invoice(), make_invoice()
    pay(first, "28.700")
    set_policy(clinic, refund=Policy.APPROVAL)
    clinic.save()
    request = approved_refund_request(first, clerk=clerk, approver=approver)
    set_policy(clinic, refund=Policy.DIRECT)
    clinic.save()

    # when staff pass it for another invoice, then it is refused all the same
    with refused(REQUEST_OTHER_INVOICE.format(request=request)):
        credit_note_create(invoice=second, lines=[CreditLineInput(lines_of(second)[1])],
                           dispute_reason=reason, actor=clerk, approval_request=request)


def undecide(request, *, how, clerk, approver, reason):
    """Take an approved-or-waiting refund request out of the approved state, `how`."""
    if how == "rejected":
        request_reject(financial_request=request, actor=approver, remarks="No")
    elif how == "withdrawn":
        request_withdraw(financial_request=request, actor=clerk)
    else:  # completed: approve it and use it on line B
        request_approve(financial_request=request, actor=approver)
        credit_note_create(invoice=request.invoice,
                           lines=[CreditLineInput(lines_of(request.invoice)[1])],
                           dispute_reason=reason, actor=clerk)
    request.refresh_from_db()
    assert request.status == how


@pytest.mark.parametrize("how", ["rejected", "withdrawn", "completed"])
def test_a_request_that_is_not_approved_cannot_be_passed_explicitly(
        how, unpaid, clerk, approver, reason, refused):
    # given a refund request that ended `how`
    request = refund_request_create(invoice=unpaid, remarks="Overcharged", actor=clerk)
    undecide(request, how=how, clerk=clerk, approver=approver, reason=reason)
    line_a, _ = lines_of(unpaid)

    # when staff credit line A passing it, then they are refused
    with refused(REQUEST_NOT_APPROVED.format(request=request, status=how)):
        credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_a)], dispute_reason=reason,
                           actor=clerk, approval_request=request)
    assert request_state(request)[0] == how


def test_a_request_still_waiting_cannot_be_passed_explicitly(unpaid, clerk, reason, refused):
    request = refund_request_create(invoice=unpaid, remarks="Overcharged", actor=clerk)
    line_a, _ = lines_of(unpaid)

    # the same answer as when the request is found rather than named
    with refused(AWAITING_DECISION.format(kind="Invoice Refund Request", invoice=unpaid)):
        credit_note_create(invoice=unpaid, lines=[CreditLineInput(line_a)], dispute_reason=reason,
                           actor=clerk, approval_request=request)


# -- proposed lines -------------------------------------------------------------------------------


@pytest.fixture
def five_on_line_a(paid, clerk, approver):
    """An approved refund request proposing 5.000 (without tax) on line A of the paid invoice."""
    line_a, _ = lines_of(paid)
    request = approved_refund_request(paid, clerk=clerk, approver=approver,
                                      lines=[CreditLineInput(line_a, D("5.000"))])
    assert list(request.lines.values_list("invoice_line", "amount")) == [(line_a.pk, D("5.000"))]
    return request


def test_more_than_the_approved_amount_on_a_line_is_refused(
        paid, five_on_line_a, clerk, reason, refused):
    line_a, _ = lines_of(paid)
    with refused(LINE_OVER_APPROVED.format(approved=money("5.000"), amount=money("5.001"),
                                           line=line_a)):
        credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("5.001"))],
                           dispute_reason=reason,
                           actor=clerk)
    assert request_state(five_on_line_a) == (RequestStatus.APPROVED, None, None)


def test_a_line_not_in_the_approved_request_is_refused(
        paid, five_on_line_a, clerk, reason, refused):
    _, line_b = lines_of(paid)
    with refused(LINE_NOT_APPROVED.format(line=line_b)):
        credit_note_create(invoice=paid, lines=[CreditLineInput(line_b, D("1.000"))],
                           dispute_reason=reason,
                           actor=clerk)
    assert request_state(five_on_line_a) == (RequestStatus.APPROVED, None, None)


def test_an_approved_line_with_one_not_approved_is_refused(
        paid, five_on_line_a, clerk, reason, refused):
    line_a, line_b = lines_of(paid)
    with refused(LINE_NOT_APPROVED.format(line=line_b)):
        credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("5.000")),
                                                CreditLineInput(line_b, D("1.000"))],
                           dispute_reason=reason, actor=clerk)


def test_exactly_the_approved_amount_is_refunded(paid, five_on_line_a, clerk, reason):
    line_a, _ = lines_of(paid)

    note = credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("5.000"))],
                              dispute_reason=reason,
                              actor=clerk)

    assert (note.subtotal, note.tax_amount, note.amount_unapplied) == (
        D("5.000"), D("0.250"), D("5.250"))
    line_a.refresh_from_db()
    assert line_a.credited_net == D("5.000")
    assert_completed_by(five_on_line_a, note, clerk)


def test_less_than_the_approved_amount_is_refunded_and_consumes_the_approval(
        paid, five_on_line_a, clerk, reason, refused):
    # when staff refund 4.000 of the 5.000 approved on line A
    line_a, _ = lines_of(paid)
    note = credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("4.000"))],
                              dispute_reason=reason,
                              actor=clerk)

    # then it is refunded and the request completed
    assert note.subtotal == D("4.000")
    assert_completed_by(five_on_line_a, note, clerk)

    # and the 1.000 left of the approval cannot be used: a new request is needed
    with refused(NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic")):
        credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("1.000"))],
                           dispute_reason=reason,
                           actor=clerk)
    with refused(REQUEST_NOT_APPROVED.format(request=five_on_line_a, status="completed")):
        credit_note_create(invoice=paid, lines=[CreditLineInput(line_a, D("1.000"))],
                           dispute_reason=reason,
                           actor=clerk, approval_request=five_on_line_a)


def test_a_full_refund_is_refused_against_a_request_that_does_not_cover_everything(
        paid, five_on_line_a, clerk, reason, refused):
    line_a, _ = lines_of(paid)
    # the full refund credits all of line A (20.000) and line B: more than approved
    with refused(LINE_OVER_APPROVED.format(approved=money("5.000"), amount=money("20.000"),
                                           line=line_a)):
        credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)
    assert request_state(five_on_line_a) == (RequestStatus.APPROVED, None, None)


def test_a_full_refund_is_refused_against_a_request_missing_a_line(
        paid, clerk, approver, reason, refused):
    line_a, line_b = lines_of(paid)
    request = approved_refund_request(paid, clerk=clerk, approver=approver,
                                      lines=[CreditLineInput(line_a)])
    with refused(LINE_NOT_APPROVED.format(line=line_b)):
        credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)
    assert request_state(request) == (RequestStatus.APPROVED, None, None)


def test_a_full_refund_passes_against_a_request_covering_every_line(
        paid, clerk, approver, reason):
    line_a, line_b = lines_of(paid)
    request = approved_refund_request(paid, clerk=clerk, approver=approver,
                                      lines=[CreditLineInput(line_a), CreditLineInput(line_b)])

    note = credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)

    assert note.amount == D("28.700")
    assert_completed_by(request, note, clerk)


def test_a_line_without_an_amount_stores_what_remains_on_it_at_request_time(
        clinic, make_invoice, clerk, approver, reason):
    # given a direct clinic where 3.000 of line A was already credited
    invoice = make_invoice()
    line_a, line_b = lines_of(invoice)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("3.000"))],
                       dispute_reason=reason,
                       actor=clerk)
    # and the clinic now needs approval
    set_policy(clinic, refund=Policy.APPROVAL)
    clinic.save()

    # when staff request line A without an amount, and line B for 2.000
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk,
                                    lines=[CreditLineInput(line_a),
                                           CreditLineInput(line_b, D("2.000"))])

    # then the request stores the 17.000 left on line A
    assert list(request.lines.values_list("invoice_line", "amount")) == [
        (line_a.pk, D("17.000")), (line_b.pk, D("2.000"))]
    event = AuditEvent.objects.get(action=Action.REQUEST_SUBMITTED)
    assert event.amount == D("19.000")
    assert event.data["lines"] == [{"line": line_a.pk, "net": "17.000"},
                                   {"line": line_b.pk, "net": "2.000"}]

    # and once approved, all of line A can be credited, but no more
    request_approve(financial_request=request, actor=approver)
    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a)],
                              dispute_reason=reason,
                              actor=clerk)
    assert note.subtotal == D("17.000")
    assert_completed_by(request, note, clerk)


def test_the_kind_of_a_request_is_checked_per_action(unpaid, clerk, approver, reason):
    # a refund request and a cancellation request may both be approved; each action consumes
    # only its own kind
    refund_request = approved_refund_request(unpaid, clerk=clerk, approver=approver)
    cancellation = approved_cancellation_request(unpaid, clerk=clerk, approver=approver)

    credit = credit_note_create(invoice=unpaid, lines=[CreditLineInput(lines_of(unpaid)[1])],
                                dispute_reason=reason, actor=clerk)
    # the credit changed what the cancellation would credit: approved afresh before use
    cancellation.refresh_from_db()
    assert (cancellation.status, cancellation.stale) == (RequestStatus.REQUESTED, True)
    cancellation = request_approve(financial_request=cancellation, actor=approver)
    assert (cancellation.status, cancellation.stale) == (RequestStatus.APPROVED, False)
    note = invoice_cancel(invoice=unpaid, remarks="Duplicate", actor=clerk)

    assert_completed_by(refund_request, credit, clerk)
    assert_completed_by(cancellation, note, clerk)


def test_an_invoice_with_an_open_refund_request_is_not_cancelled_until_it_is_settled(
    approval_clinic, make_invoice, clerk, clerk2, approver, refused
):

    from approvals.services import cancellation_request_create, refund_request_create

    # given an invoice with a refund request waiting and an approved cancellation request
    invoice = make_invoice()
    refund_request = refund_request_create(invoice=invoice, remarks="Billed twice", actor=clerk)
    cancellation = cancellation_request_create(invoice=invoice, remarks="Wrong patient",
                                               actor=clerk2)
    request_approve(financial_request=cancellation, actor=approver)

    # then cancelling is refused while the refund request is open, and allowed once withdrawn
    with refused(OPEN_REFUND_REQUEST.format(invoice=invoice, pk=refund_request.pk,
                                            status="requested")):
        invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk2)
    request_withdraw(financial_request=refund_request, actor=clerk)
    invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk2)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CANCELLED


# -- the breakdown before "Refund now" asks the same ----------------------------------------------

def test_the_breakdown_refuses_more_than_the_approved_amount_before_anything_is_confirmed(
        paid, five_on_line_a, clerk, refused):
    line_a, _ = lines_of(paid)

    with refused(LINE_OVER_APPROVED.format(approved=money("5.000"), amount=money("5.001"),
                                           line=line_a)):
        credit_note_preview(invoice=paid, lines=[CreditLineInput(line_a, D("5.001"))],
                            actor=clerk)
    with refused(LINE_NOT_APPROVED.format(line=lines_of(paid)[1])):
        credit_note_preview(invoice=paid, lines=[CreditLineInput(lines_of(paid)[1])],
                            actor=clerk)

    # within the approval, the breakdown is shown
    breakdown = credit_note_preview(invoice=paid, lines=[CreditLineInput(line_a, D("5.000"))],
                                    actor=clerk)
    assert breakdown.subtotal == D("5.000")
    assert request_state(five_on_line_a) == (RequestStatus.APPROVED, None, None)


def test_the_breakdown_says_a_request_is_needed_where_the_clinic_needs_approval(
        paid, clerk, refused):
    line_a, _ = lines_of(paid)
    with refused(NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic")):
        credit_note_preview(invoice=paid, lines=[CreditLineInput(line_a)], actor=clerk)
