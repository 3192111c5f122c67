"""Approve exactly what was shown (docs/rules.md §5): a request freezes the breakdown of the
credit note it would produce; the approver sees it; carrying it out may not exceed it; when the
invoice changes so that the breakdown would differ, the request goes stale and its approvers
confirm the new breakdown before it can be carried out. Bulk decisions: each request in its own
transaction, each with its own outcome."""

from decimal import Decimal

import pytest
from django.urls import reverse

from approvals.gate import PAYS_BACK_MORE
from approvals.models import FinancialRequest, RequestStatus
from approvals.rules import OWN_REQUEST, STALE_REQUEST
from approvals.services import (
    NOT_FOUND,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    requests_decide_many,
)
from audit.models import Action, AuditEvent
from billing.breakdown import CreditLineInput
from refunds.services import credit_note_create, invoice_cancel

from .api_helpers import gql

D = Decimal


def lines_of(invoice):
    return list(invoice.lines.order_by("position"))


def test_a_request_freezes_the_breakdown_it_would_produce(approval_clinic, make_invoice, pay,
                                                          clerk, cash):
    # given a paid invoice: 2 × 10.000 and 1 × 7.333 at 5% VAT
    invoice = make_invoice()
    payment = pay(invoice, "28.700")
    line_a, _ = lines_of(invoice)

    request = refund_request_create(invoice=invoice, remarks="Item 1 twice", actor=clerk,
                                    lines=[CreditLineInput(line_a, D("10.000"))])

    assert request.frozen_total == D("10.500")
    assert request.frozen_breakdown == {
        "currency": "OMR",
        "lines": [{"line": line_a.pk, "description": "Item 1", "net": "10.000", "tax": "0.500",
                   "total": "10.500"}],
        "net": "10.000", "tax": "0.500", "total": "10.500",
        "reduces_balance": "0.000", "paid_back": "10.500",
        "refunds": [{"payment": payment.pk, "method": "Cash", "amount": "10.500"}],
    }


def test_a_whole_refund_request_freezes_every_line(approval_clinic, make_invoice, pay, clerk):
    invoice = make_invoice()
    pay(invoice, "28.700")
    request = refund_request_create(invoice=invoice, remarks="Refund all", actor=clerk)
    assert request.frozen_total == D("28.700")
    assert [line["net"] for line in request.frozen_breakdown["lines"]] == ["20.000", "7.333"]


def test_a_cancellation_request_freezes_what_is_still_due(approval_clinic, make_invoice, clerk):
    request = cancellation_request_create(invoice=make_invoice(), remarks="Wrong patient",
                                          actor=clerk)
    assert (request.frozen_total, request.frozen_breakdown["reduces_balance"]) == (
        D("28.700"), "28.700")


def test_the_approver_sees_the_frozen_breakdown(client, approval_clinic, make_invoice, pay,
                                                clerk, approver):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, _ = lines_of(invoice)
    request = refund_request_create(invoice=invoice, remarks="Item 1 twice", actor=clerk,
                                    lines=[CreditLineInput(line_a, D("10.000"))])
    client.force_login(approver)
    page = client.get(reverse("approvals:request_detail", args=[request.pk])).content.decode()
    assert "The credit note to approve" in page
    assert "Paid back to the payer" in page and "10.500 OMR" in page
    assert "to the Cash payment" in page


def test_carrying_out_may_not_pay_back_more_than_was_approved(
        approval_clinic, make_invoice, pay, clerk, approver, reason, refused):
    # given an approved refund of line B whose approved breakdown paid back only 5.000 OMR
    invoice = make_invoice()
    pay(invoice, "28.700")
    _, line_b = lines_of(invoice)
    request = refund_request_create(invoice=invoice, remarks="Item 2 not done", actor=clerk,
                                    lines=[CreditLineInput(line_b)])
    request_approve(financial_request=request, actor=approver)
    frozen = FinancialRequest.objects.get(pk=request.pk).frozen_breakdown
    FinancialRequest.objects.filter(pk=request.pk).update(
        frozen_breakdown={**frozen, "paid_back": "5.000"})

    # then a refund paying back 7.700 OMR is refused, and nothing is written
    with refused(PAYS_BACK_MORE.format(request=request, approved="5.000 OMR",
                                       amount="7.700 OMR")):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)],
                           dispute_reason=reason, actor=clerk)


def test_a_payment_makes_an_approved_request_stale_until_reconfirmed(
        approval_clinic, make_invoice, pay, clerk, approver, reason, refused):
    # given an approved credit of line B on an unpaid invoice (it only reduces the balance)
    invoice = make_invoice()
    _, line_b = lines_of(invoice)
    request = refund_request_create(invoice=invoice, remarks="Item 2 not done", actor=clerk,
                                    lines=[CreditLineInput(line_b)])
    request_approve(financial_request=request, actor=approver)

    # when the patient pays in full: the same credit would now pay 7.700 OMR back
    pay(invoice, "28.700")

    # then the request waits again, with the new breakdown frozen in its place
    request.refresh_from_db()
    assert (request.status, request.stale, request.approval_round) == (
        RequestStatus.REQUESTED, True, 2)
    assert request.frozen_breakdown["paid_back"] == "7.700"
    event = AuditEvent.objects.get(action=Action.REQUEST_STALE, object_id=str(request.pk))
    assert (event.from_state, event.to_state, event.data["cause"]) == (
        RequestStatus.APPROVED, RequestStatus.REQUESTED, "a payment was recorded")
    assert event.data["was"]["paid_back"] == "0.000"
    # it cannot be carried out
    with refused(STALE_REQUEST.format(request=request, invoice=invoice)):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)],
                           dispute_reason=reason, actor=clerk)

    # once its approver confirms the new breakdown, it is carried out as shown
    request = request_approve(financial_request=request, actor=approver, remarks="Still right")
    assert (request.status, request.stale) == (RequestStatus.APPROVED, False)
    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)],
                              dispute_reason=reason, actor=clerk)
    assert (note.amount, note.amount_unapplied) == (D("7.700"), D("7.700"))


def test_another_credit_note_makes_an_open_request_stale(
        approval_clinic, make_invoice, pay, clerk, approver, reason):
    invoice = make_invoice()
    _, line_b = lines_of(invoice)
    cancellation = cancellation_request_create(invoice=invoice, remarks="Wrong patient",
                                               actor=clerk)
    refund = refund_request_create(invoice=invoice, remarks="Item 2", actor=clerk,
                                   lines=[CreditLineInput(line_b)])
    request_approve(financial_request=refund, actor=approver)

    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk)

    cancellation.refresh_from_db()
    assert cancellation.stale
    assert cancellation.frozen_total == D("21.000")  # what is still due after the credit
    event = AuditEvent.objects.get(action=Action.REQUEST_STALE,
                                   object_id=str(cancellation.pk))
    assert event.data["cause"].startswith("credit note CN-")


def test_a_change_that_leaves_the_breakdown_as_it_was_changes_nothing(
        approval_clinic, make_invoice, pay, clerk, approver):
    # given a refund of line A approved on a paid invoice, and a second invoice paid meanwhile
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, _ = lines_of(invoice)
    request = refund_request_create(invoice=invoice, remarks="Item 1", actor=clerk,
                                    lines=[CreditLineInput(line_a)])
    request_approve(financial_request=request, actor=approver)
    other = make_invoice()
    pay(other, "10.000")

    request.refresh_from_db()
    assert (request.status, request.stale) == (RequestStatus.APPROVED, False)
    assert not AuditEvent.objects.filter(action=Action.REQUEST_STALE).exists()


def test_a_cancellation_carried_out_as_approved(approval_clinic, make_invoice, clerk, approver):
    invoice = make_invoice()
    request = cancellation_request_create(invoice=invoice, remarks="Wrong patient",
                                          actor=clerk)
    request_approve(financial_request=request, actor=approver)
    note = invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk)
    assert note.amount == request.frozen_total


def test_the_api_shows_the_frozen_breakdown_and_staleness(client, approval_clinic, make_invoice,
                                                          pay, clerk, approver, read_token):
    invoice = make_invoice()
    _, line_b = lines_of(invoice)
    request = refund_request_create(invoice=invoice, remarks="Item 2", actor=clerk,
                                    lines=[CreditLineInput(line_b)])
    request_approve(financial_request=request, actor=approver)
    pay(invoice, "28.700")

    body = gql(client, read_token, """{ financialRequests { id status stale approvals { by }
        frozenBreakdown } }""")

    [shown] = body["data"]["financialRequests"]
    assert (shown["status"], shown["stale"], shown["approvals"]) == ("REQUESTED", True, [])
    assert shown["frozenBreakdown"]["total"] == "7.700"
    assert shown["frozenBreakdown"]["paidBack"] == "7.700"
    assert shown["frozenBreakdown"]["lines"] == [{
        "invoiceLineId": str(line_b.pk), "description": "Item 2", "net": "7.333",
        "tax": "0.367", "total": "7.700"}]


# -- bulk decisions --------------------------------------------------------------------------------

@pytest.fixture
def three_waiting(approval_clinic, make_invoice, clerk):
    return [refund_request_create(invoice=make_invoice(), remarks=f"Request {n}", actor=clerk)
            for n in range(3)]


def test_a_bulk_approval_decides_each_request_on_its_own(three_waiting, approver, clerk,
                                                         outsider, other_invoice):
    from approvals.selectors import requests_for_user

    # given three waiting requests, one submitted by the approver (who may not decide it)
    first, second, third = three_waiting
    mine = FinancialRequest.objects.filter(pk=third.pk)
    mine.update(requested_by=approver)

    outcomes = requests_decide_many(
        request_ids=[first.pk, second.pk, third.pk, 999999], actor=approver, approve=True,
        visible=requests_for_user(user=approver))

    assert [(o.request_id, o.ok) for o in outcomes] == [
        (first.pk, True), (second.pk, True), (third.pk, False), (999999, False)]
    assert outcomes[2].refusal == OWN_REQUEST
    assert outcomes[3].refusal == NOT_FOUND.format(pk=999999)
    statuses = dict(FinancialRequest.objects.values_list("pk", "status"))
    assert (statuses[first.pk], statuses[second.pk], statuses[third.pk]) == (
        RequestStatus.APPROVED, RequestStatus.APPROVED, RequestStatus.REQUESTED)


def test_a_bulk_rejection_needs_its_one_remark(three_waiting, approver):
    outcomes = requests_decide_many(request_ids=[r.pk for r in three_waiting], actor=approver,
                                    approve=False, remarks="")
    assert {o.refusal for o in outcomes} == {"Say why the request is rejected."}
    assert set(FinancialRequest.objects.values_list("status", flat=True)) == {
        RequestStatus.REQUESTED}
