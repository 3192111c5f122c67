"""The actions the invoice page offers: its More Action menu and the buttons on its refunds.
Each is decided by the same predicates the services raise on (billing/rules.py,
approvals/rules.py, refunds/rules.py), so staff are never offered what would be refused. An
action the user may take in general but not on this invoice now is shown disabled, with the
rule's own sentence as the reason; one the user may never take is not shown. The templates only
render what this returns."""

from dataclasses import dataclass

from django.urls import reverse

from approvals.models import RequestKind
from approvals.rules import (
    SUBMIT_PERMISSION,
    approval_refusal,
    needs_approval,
    open_refund_request_refusal,
    open_requests_of,
    request_refusal,
)
from approvals.selectors import approved_request_lines
from billing.breakdown import CreditLineInput, breakdown_compute
from billing.exceptions import BusinessRuleError
from billing.models import Invoice, InvoiceLine, Payment
from billing.rules import (
    cancellation_refusal,
    discard_refusal,
    issue_refusal,
    payment_refusal,
    refund_refusal,
)
from refunds.models import Refund
from refunds.rules import payout_refusal, retry_refusal

# The menu actions a line's own button can stand for.
CREDIT_LINES = "credit_lines"
REFUND_REQUEST = "refund_request"


@dataclass(frozen=True)
class Action:
    label: str
    url: str
    method: str = "get"  # "post" for one-click actions
    danger: bool = False
    refusal: str | None = None  # set: shown disabled, with this as the reason
    key: str = ""  # names the menu actions other buttons lead where they lead

    @property
    def enabled(self) -> bool:
        return self.refusal is None


def _first(*refusals) -> str | None:
    """The first refusal of those asked in order (each a callable, asked only if needed)."""
    for refusal in refusals:
        if message := refusal():
            return message
    return None


def invoice_actions(*, invoice: Invoice, user) -> list[Action]:
    """The More Action menu of an invoice."""
    if discard_refusal(invoice) is None:  # a draft: nothing but issuing or discarding it applies
        draft_actions = []
        if user.has_perm("billing.issue_invoice"):
            draft_actions.append(Action("Issue invoice", reverse("desk:invoice_issue",
                                                                 args=[invoice.pk]),
                                        method="post", refusal=issue_refusal(invoice)))
        if user.has_perm("billing.add_invoice"):
            draft_actions.append(Action("Discard draft", reverse("billing:invoice_discard",
                                                                 args=[invoice.pk]),
                                        method="post", danger=True))
        return draft_actions
    open_requests = open_requests_of(invoice)

    # what crediting everything still creditable would come to (a full refund, a cancellation)
    remaining = invoice.total - invoice.amount_credited

    def policy(kind: str, amount=None):
        """The clinic's rules for a credit note of `amount` (None: not known before the form,
        the smallest credit stands for it): at once, or with the invoice's open request."""
        return lambda: approval_refusal(invoice, kind, open_requests.get(kind), amount=amount,
                                        named=False)

    actions: list[Action] = []
    if user.has_perm("billing.record_payment"):
        actions.append(Action("Record payment",
                              reverse("billing:payment_create", args=[invoice.pk]),
                              refusal=payment_refusal(invoice)))

    refund_url = reverse("refunds:credit_note_create", args=[invoice.pk])
    if user.has_perm("billing.refund_invoice"):
        actions.append(Action("Refund", f"{refund_url}?full=1", refusal=_first(
            lambda: refund_refusal(invoice, full=True), policy(RequestKind.REFUND, remaining))))
    if user.has_perm("billing.credit_invoice"):
        actions.append(Action("Credit lines", refund_url, key=CREDIT_LINES, refusal=_first(
            lambda: refund_refusal(invoice), policy(RequestKind.REFUND))))
    if needs_approval(invoice, RequestKind.REFUND) and user.has_perm(SUBMIT_PERMISSION):
        actions.append(Action("Invoice Refund Request", reverse(
            "approvals:refund_request_create", args=[invoice.pk]), key=REFUND_REQUEST,
            refusal=request_refusal(invoice, RequestKind.REFUND, user,
                                    open_requests=open_requests)))

    if user.has_perm("billing.cancel_invoice"):
        actions.append(Action("Cancel Invoice", reverse("refunds:invoice_cancel",
                                                        args=[invoice.pk]), danger=True,
                              refusal=_first(
                                  lambda: cancellation_refusal(invoice),
                                  lambda: open_refund_request_refusal(
                                      invoice, open_requests=open_requests),
                                  policy(RequestKind.CANCELLATION, remaining))))
    if needs_approval(invoice, RequestKind.CANCELLATION) and user.has_perm(SUBMIT_PERMISSION):
        actions.append(Action("Invoice Cancellation Request", reverse(
            "approvals:cancellation_request_create", args=[invoice.pk]),
            refusal=request_refusal(invoice, RequestKind.CANCELLATION, user,
                                    open_requests=open_requests)))
    return actions


def line_actions(*, invoice: Invoice, lines: list[InvoiceLine], payments: list[Payment],
                 menu: list[Action], user) -> dict[int, Action]:
    """{line id: its button}: "Refund this line" when crediting all that remains on it (or what
    the approval allows) would pay money back, "Credit this line" when it would only reduce what
    is owed, as the breakdown works it out. The button leads where the menu (`menu`, from
    `invoice_actions`) lets that line be credited: the refund form when the clinic's approval
    rules let a credit note of that total go directly (or an approved request covers it), else
    the Invoice Refund Request, with the line ticked. No button when the invoice cannot be
    credited, the menu offers neither, or on a line with nothing left."""
    if refund_refusal(invoice):
        return {}
    offered = {action.key: action for action in menu if action.enabled and action.key}
    direct, request = offered.get(CREDIT_LINES), offered.get(REFUND_REQUEST)
    if direct is None and request is None:
        return {}
    authorising = open_requests_of(invoice).get(RequestKind.REFUND) if direct else None
    # carrying out an approved request: only its lines, each up to its amount
    approved = approved_request_lines(invoice=invoice) if authorising else {}
    buttons = {}
    for line in lines:
        if line.creditable_net <= 0 or (approved and line.pk not in approved):
            continue
        try:
            breakdown = breakdown_compute(
                invoice=invoice, invoice_lines=lines, payments=payments,
                requested=[CreditLineInput(line, approved.get(line.pk))])
        except BusinessRuleError:
            continue
        target = request
        if direct and approval_refusal(invoice, RequestKind.REFUND, authorising,
                                       amount=breakdown.total, named=False) is None:
            target = direct
        if target is None:
            continue
        pays_back = breakdown.post_payment > 0
        if pays_back and target is direct and not user.has_perm("billing.refund_invoice"):
            continue
        buttons[line.pk] = Action("Refund this line" if pays_back else "Credit this line",
                                  f"{target.url}?line={line.pk}", key=target.key)
    return buttons


def refund_actions(*, refund: Refund, user) -> list[Action]:
    """The buttons on one refund of the invoice page."""
    actions = []
    if payout_refusal(refund, user) is None:
        actions.append(Action("Mark paid out", reverse("refunds:refund_paid_out",
                                                       args=[refund.pk]), method="post"))
    if retry_refusal(refund, user) is None:
        actions.append(Action("Retry refund", reverse("refunds:refund_retry", args=[refund.pk]),
                              method="post", danger=True))
    return actions
