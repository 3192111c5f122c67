"""Each eligibility rule is stated once (billing/rules.py, approvals/rules.py, refunds/rules.py)
and used three ways: the service refuses with the rule's message and changes nothing, the
invoice page offers the action only where the rule allows it, and the rule's answer is the
message itself. One test per rule proves all three agree, case by case (docs/rules.md §2-§5)."""

from decimal import Decimal

import pytest
from django_fsm import can_proceed

from approvals import rules as approval_rules
from approvals.models import RequestKind
from approvals.services import (
    approval_policy_set,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
)
from billing import rules as billing_rules
from billing.access import NO_PERMISSION
from billing.breakdown import CreditLineInput
from billing.models import Invoice, Policy
from billing.services import invoice_discard, invoice_issue, payment_record
from desk.actions import invoice_actions, refund_actions
from refunds import rules as refund_rules
from refunds.models import Refund
from refunds.services import credit_note_create, invoice_cancel, refund_mark_paid_out, refund_retry

D = Decimal
TOTAL = "28.700"  # the default invoice of make_invoice: 2 × 10.000 and 1 × 7.333 at VAT 5%


def offered(invoice, user) -> list[str]:
    """The More Action menu's labels, as the invoice page builds it."""
    return [action.label for action in invoice_actions(
        invoice=Invoice.objects.select_related("clinic").get(pk=invoice.pk), user=user)
        if action.enabled]


def menu_of(invoice, user) -> dict[str, str | None]:
    """{label: the reason it is disabled, or None} of every action the menu shows."""
    return {action.label: action.refusal for action in invoice_actions(
        invoice=Invoice.objects.select_related("clinic").get(pk=invoice.pk), user=user)}


def fresh(invoice) -> Invoice:
    return Invoice.objects.select_related("clinic").get(pk=invoice.pk)


def credit_everything(invoice, *, reason, clerk):
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line)
                                               for line in invoice.lines.all()],
                       dispute_reason=reason, actor=clerk)


@pytest.fixture
def invoice_in(make_invoice, pay, reason, clerk):
    """invoice_in(state) → an invoice in one of the states the rules tell apart."""

    def build(state):
        invoice = make_invoice(issue=state != "draft")
        if state in ("paid", "fully paid"):
            pay(invoice, "10.000" if state == "paid" else TOTAL)
        elif state == "cancelled":
            invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk)
        elif state == "fully credited":
            credit_everything(invoice, reason=reason, clerk=clerk)
        return fresh(invoice)

    return build


# -- billing/rules.py ----------------------------------------------------------------------------

@pytest.mark.parametrize(("state", "message"), [
    ("draft", billing_rules.PAYMENT_ON_DRAFT),
    ("cancelled", billing_rules.PAYMENT_ON_CANCELLED),
    ("fully paid", billing_rules.NOTHING_TO_PAY),
    ("issued", None),
])
def test_payment_refusal(state, message, invoice_in, clerk, cash, refused):
    invoice = invoice_in(state)
    message = message and message.format(invoice=invoice)

    assert billing_rules.payment_refusal(invoice) == message
    assert ("Record payment" in offered(invoice, clerk)) == (message is None)
    # shown disabled with the rule's sentence, except on a draft, where no payment applies yet
    assert menu_of(invoice, clerk).get("Record payment", "absent") == (
        "absent" if state == "draft" else message)
    if message:
        with refused(message):
            payment_record(invoice=invoice, method=cash, amount=D("1.000"), actor=clerk)


@pytest.mark.parametrize(("state", "message"), [
    ("issued", billing_rules.DISCARD_NOT_DRAFT),
    ("cancelled", billing_rules.DISCARD_NOT_DRAFT),
    ("draft", None),
])
def test_discard_refusal(state, message, invoice_in, clerk, refused):
    invoice = invoice_in(state)
    message = message and message.format(invoice=invoice)

    assert billing_rules.discard_refusal(invoice) == message
    assert ("Discard draft" in offered(invoice, clerk)) == (message is None)
    if message:
        with refused(message):
            invoice_discard(invoice=invoice, actor=clerk)


@pytest.mark.parametrize(("state", "message"), [
    ("draft", None),
    ("zero draft", billing_rules.ISSUE_ZERO_TOTAL),
    ("issued", billing_rules.ALREADY_ISSUED),
    ("cancelled", billing_rules.ALREADY_ISSUED),
])
def test_issue_refusal(state, message, invoice_in, make_invoice, clerk, refused):
    invoice = fresh(make_invoice([("1", "0.000")], issue=False)) if state == "zero draft" else (
        invoice_in(state))
    message = message and message.format(invoice=invoice)

    assert billing_rules.issue_refusal(invoice) == message
    assert can_proceed(invoice.issue) == (message is None)
    assert ("Issue invoice" in offered(invoice, clerk)) == (message is None)
    # on a draft it is shown, disabled with the rule's sentence when it cannot be issued; once
    # issued it is no longer offered
    assert menu_of(invoice, clerk).get("Issue invoice", "absent") == (
        "absent" if state in ("issued", "cancelled") else message)
    if message:
        with refused(message):
            invoice_issue(invoice=invoice, actor=clerk)


@pytest.mark.parametrize(("state", "full", "message"), [
    ("draft", False, billing_rules.INVOICE_DRAFT),
    ("cancelled", False, billing_rules.INVOICE_CANCELLED),
    ("fully credited", False, billing_rules.NOTHING_LEFT),
    ("fully credited", True, billing_rules.NOTHING_LEFT),
    ("issued", True, billing_rules.NOTHING_PAID),
    ("issued", False, None),
    ("paid", True, None),
])
def test_refund_refusal(state, full, message, invoice_in, clerk, reason, refused):
    invoice = invoice_in(state)
    message = message and message.format(invoice=invoice)

    assert billing_rules.refund_refusal(invoice, full=full) == message
    label = "Refund" if full else "Credit lines"
    assert (label in offered(invoice, clerk)) == (message is None)
    assert menu_of(invoice, clerk).get(label, "absent") == (
        "absent" if state == "draft" else message)
    if message:
        lines = [] if full else [CreditLineInput(invoice.lines.first(), D("1.000"))]
        with refused(message):
            credit_note_create(invoice=invoice, lines=lines, full=full, dispute_reason=reason,
                               actor=clerk)


@pytest.mark.parametrize(("state", "message"), [
    ("draft", billing_rules.CANCEL_DRAFT),
    ("cancelled", billing_rules.CANCEL_ALREADY),
    ("paid", billing_rules.CANCEL_PAID),
    ("fully credited", billing_rules.CANCEL_NOTHING_LEFT),
    ("issued", None),
])
def test_cancellation_refusal(state, message, invoice_in, clerk, refused):
    invoice = invoice_in(state)
    message = message and message.format(invoice=invoice, amount="10.000 OMR")

    assert billing_rules.cancellation_refusal(invoice) == message
    assert ("Cancel Invoice" in offered(invoice, clerk)) == (message is None)
    assert menu_of(invoice, clerk).get("Cancel Invoice", "absent") == (
        "absent" if state == "draft" else message)
    # the state machine's own guard asks the same rule
    assert can_proceed(invoice.cancel) == (message is None)
    if message:
        with refused(message):
            invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk)


# -- approvals/rules.py --------------------------------------------------------------------------

@pytest.fixture
def needs_approval(clinic):
    def set_kind_policy(kind, policy=Policy.APPROVAL):
        approval_policy_set(clinic=clinic, kind=kind, policy=policy)

    return set_kind_policy


REQUEST_LABEL = {RequestKind.REFUND: "Invoice Refund Request",
                 RequestKind.CANCELLATION: "Invoice Cancellation Request"}
SUBMIT = {RequestKind.REFUND: refund_request_create,
          RequestKind.CANCELLATION: cancellation_request_create}


@pytest.mark.parametrize("kind", [RequestKind.REFUND, RequestKind.CANCELLATION])
@pytest.mark.parametrize("case", ["no permission", "direct clinic", "draft", "already open",
                                  "allowed"])
def test_request_refusal(kind, case, invoice_in, needs_approval, clerk, clerk2, approver,
                         refused):
    needs_approval(kind, Policy.DIRECT if case == "direct clinic" else Policy.APPROVAL)
    invoice = invoice_in("draft" if case == "draft" else "issued")
    user = approver if case == "no permission" else clerk
    expected = {
        "no permission": NO_PERMISSION.format(action="submit requests"),
        "direct clinic": approval_rules.DIRECT_POLICY.format(
            clinic="Muscat Clinic", what=("refunds and credits invoices"
                                          if kind == RequestKind.REFUND else "cancels invoices")),
        "draft": (billing_rules.INVOICE_DRAFT if kind == RequestKind.REFUND
                  else billing_rules.CANCEL_DRAFT),
        "allowed": None,
    }
    if case == "already open":
        waiting = SUBMIT[kind](invoice=invoice, remarks="Overcharged", actor=clerk2)
        expected[case] = approval_rules.ALREADY_OPEN.format(
            invoice=invoice, kind=waiting.get_kind_display(), pk=waiting.pk, status="requested",
            requester="clerk2")
    message = expected[case]

    assert approval_rules.request_refusal(fresh(invoice), kind, user) == message
    assert (REQUEST_LABEL[kind] in offered(invoice, user)) == (message is None)
    if message:
        with refused(message):
            SUBMIT[kind](invoice=invoice, remarks="Overcharged", actor=user)


@pytest.mark.parametrize("case", ["direct clinic", "no request", "waiting", "rejected",
                                  "approved"])
def test_approval_refusal(case, invoice_in, needs_approval, clerk, approver, reason, refused):
    needs_approval(RequestKind.REFUND, Policy.DIRECT if case == "direct clinic"
                   else Policy.APPROVAL)
    invoice = invoice_in("issued")
    named = None
    if case in ("waiting", "rejected", "approved"):
        named = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
        if case == "approved":
            request_approve(financial_request=named, actor=approver)
        elif case == "rejected":
            request_reject(financial_request=named, actor=approver, remarks="No")
        named.refresh_from_db()
    message = {
        "no request": approval_rules.NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic"),
        "waiting": approval_rules.AWAITING_DECISION.format(kind="Invoice Refund Request",
                                                          invoice=invoice),
        "rejected": approval_rules.REQUEST_NOT_APPROVED.format(request=named,
                                                               status="rejected"),
    }.get(case)

    assert approval_rules.approval_refusal(invoice, RequestKind.REFUND, named) == message
    if case != "rejected":  # a rejected request is not open: the menu sees "no request"
        assert ("Credit lines" in offered(invoice, clerk)) == (message is None)
    if message:
        with refused(message):
            credit_note_create(invoice=invoice, lines=[CreditLineInput(invoice.lines.first())],
                               dispute_reason=reason, actor=clerk, approval_request=named)


@pytest.mark.parametrize("open_refund_request", [True, False])
def test_open_refund_request_refusal(open_refund_request, invoice_in, needs_approval, clerk,
                                     approver, refused):
    needs_approval(RequestKind.REFUND)
    invoice = invoice_in("issued")
    message = None
    if open_refund_request:
        waiting = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
        message = approval_rules.OPEN_REFUND_REQUEST.format(invoice=invoice, pk=waiting.pk,
                                                            status="requested")

    assert approval_rules.open_refund_request_refusal(invoice) == message
    assert ("Cancel Invoice" in offered(invoice, clerk)) == (message is None)
    if message:
        with refused(message):
            invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk)


@pytest.mark.parametrize("case", ["own request", "no permission", "already decided",
                                  "withdrawn", "allowed"])
def test_decision_refusal(case, invoice_in, needs_approval, clerk, clerk2, approver, refused):
    needs_approval(RequestKind.REFUND)
    invoice = invoice_in("issued")
    requester = approver if case == "own request" else clerk
    if case == "own request":
        approver.groups.add(*clerk.groups.all())  # an approver who is also billing staff
        approver = type(approver).objects.get(pk=approver.pk)  # no cached permissions
        requester = approver
    financial_request = refund_request_create(invoice=invoice, remarks="Overcharged",
                                              actor=requester)
    if case == "already decided":
        request_reject(financial_request=financial_request, actor=approver, remarks="No")
    elif case == "withdrawn":
        request_withdraw(financial_request=financial_request, actor=clerk)
    financial_request.refresh_from_db()
    decider = clerk2 if case == "no permission" else approver
    message = {
        "own request": approval_rules.OWN_REQUEST,
        "no permission": NO_PERMISSION.format(action="approve or reject financial requests"),
        "already decided": approval_rules.ALREADY_DECIDED.format(who="approver",
                                                                 status="rejected"),
        "withdrawn": approval_rules.NOT_OPEN.format(status="withdrawn"),
    }.get(case)

    assert approval_rules.decision_refusal(financial_request, decider) == message
    if message:
        with refused(message):
            request_approve(financial_request=financial_request, actor=decider)


@pytest.mark.parametrize("case", ["not the requester", "decided", "allowed"])
def test_withdraw_refusal(case, invoice_in, needs_approval, clerk, clerk2, approver, refused):
    needs_approval(RequestKind.REFUND)
    invoice = invoice_in("issued")
    financial_request = refund_request_create(invoice=invoice, remarks="Overcharged",
                                              actor=clerk)
    if case == "decided":
        request_approve(financial_request=financial_request, actor=approver)
        financial_request.refresh_from_db()
    user = clerk2 if case == "not the requester" else clerk
    message = {
        "not the requester": approval_rules.WITHDRAW_NOT_REQUESTER.format(who="clerk"),
        "decided": approval_rules.WITHDRAW_NOT_WAITING.format(status="approved"),
    }.get(case)

    assert approval_rules.withdraw_refusal(financial_request, user) == message
    if message:
        with refused(message):
            request_withdraw(financial_request=financial_request, actor=user)


# -- refunds/rules.py ----------------------------------------------------------------------------

@pytest.fixture
def refund_in(make_invoice, pay, online_card, reason, clerk, django_capture_on_commit_callbacks):
    """refund_in(status) → a refund of the whole invoice that ended in that status."""

    def build(status):
        invoice = make_invoice()
        if status == "awaiting_payout":
            pay(invoice, TOTAL)
        else:
            pay(invoice, TOTAL, method=online_card,
                reference="fail_card" if status == "failed" else "ok_card")
        with django_capture_on_commit_callbacks(execute=True):
            note = credit_note_create(invoice=invoice, full=True, dispute_reason=reason,
                                      actor=clerk)
        refund = Refund.objects.get(credit_note=note)
        assert refund.status == status
        return refund

    return build


def check_refund_rule(rule, label, service, *, refund, user, message, refused):
    """The rule answers `message` (None: allowed), the invoice page offers `label` exactly when
    it allows, and the service refuses with the same message, changing nothing."""
    message = message and message.format(status=refund.get_status_display().lower(),
                                         action="refund invoices")
    assert rule(refund, user) == message
    labels = [action.label for action in refund_actions(refund=refund, user=user)]
    assert (label in labels) == (message is None)
    if message:
        with refused(message):
            service(refund=refund, actor=user)


@pytest.mark.parametrize(("status", "who", "message"), [
    ("awaiting_payout", "clerk", refund_rules.RETRY_NOT_FAILED),
    ("succeeded", "clerk", refund_rules.RETRY_NOT_FAILED),
    ("failed", "approver", NO_PERMISSION),
    ("failed", "clerk", None),
])
def test_retry_refusal(status, who, message, refund_in, clerk, approver, refused):
    check_refund_rule(refund_rules.retry_refusal, "Retry refund", refund_retry,
                      refund=refund_in(status), user=clerk if who == "clerk" else approver,
                      message=message, refused=refused)


@pytest.mark.parametrize(("status", "who", "message"), [
    ("failed", "clerk", refund_rules.PAYOUT_NOT_AWAITING),
    ("succeeded", "clerk", refund_rules.PAYOUT_NOT_AWAITING),
    ("awaiting_payout", "approver", NO_PERMISSION),
    ("awaiting_payout", "clerk", None),
])
def test_payout_refusal(status, who, message, refund_in, clerk, approver, refused):
    check_refund_rule(refund_rules.payout_refusal, "Mark paid out", refund_mark_paid_out,
                      refund=refund_in(status), user=clerk if who == "clerk" else approver,
                      message=message, refused=refused)
