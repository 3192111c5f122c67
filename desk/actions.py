"""The actions the invoice page offers: its More Action menu and the buttons on its refunds.
Each is offered only where the same predicates the services raise on (billing/rules.py,
approvals/rules.py, refunds/rules.py) allow it, so staff are never offered what would be
refused; the templates only render what this returns."""

from dataclasses import dataclass

from django.urls import reverse

from approvals.models import RequestKind
from approvals.rules import (
    approval_refusal,
    needs_approval,
    open_refund_request_refusal,
    open_requests_of,
    request_refusal,
)
from billing.models import Invoice
from billing.rules import cancellation_refusal, discard_refusal, payment_refusal, refund_refusal
from refunds.models import Refund
from refunds.rules import payout_refusal, retry_refusal


@dataclass(frozen=True)
class Action:
    label: str
    url: str
    method: str = "get"  # "post" for one-click actions
    danger: bool = False


def invoice_actions(*, invoice: Invoice, user) -> list[Action]:
    """The More Action menu of an invoice."""
    open_requests = open_requests_of(invoice)

    def may_carry_out(kind: str, permission: str) -> bool:
        """The user holds the permission and the clinic's policy lets it happen now: at once,
        or with the invoice's approved request."""
        authorising = open_requests.get(kind) if needs_approval(invoice, kind) else None
        return (user.has_perm(permission)
                and approval_refusal(invoice, kind, authorising) is None)

    def may_request(kind: str) -> bool:
        return request_refusal(invoice, kind, user, open_requests=open_requests) is None

    actions: list[Action] = []
    if discard_refusal(invoice) is None and user.has_perm("billing.add_invoice"):
        actions.append(Action("Discard draft", reverse("billing:invoice_discard", args=[
            invoice.pk]), method="post", danger=True))
    if payment_refusal(invoice) is None and user.has_perm("billing.record_payment"):
        actions.append(Action("Record payment",
                              reverse("billing:payment_create", args=[invoice.pk])))

    refund_url = reverse("refunds:credit_note_create", args=[invoice.pk])
    if (refund_refusal(invoice, full=True) is None
            and may_carry_out(RequestKind.REFUND, "billing.refund_invoice")):
        actions.append(Action("Refund", f"{refund_url}?full=1"))
    if (refund_refusal(invoice) is None
            and may_carry_out(RequestKind.REFUND, "billing.credit_invoice")):
        actions.append(Action("Credit lines", refund_url))
    if may_request(RequestKind.REFUND):
        actions.append(Action("Invoice Refund Request", reverse(
            "approvals:refund_request_create", args=[invoice.pk])))

    if (cancellation_refusal(invoice) is None
            and open_refund_request_refusal(invoice, open_requests=open_requests) is None
            and may_carry_out(RequestKind.CANCELLATION, "billing.cancel_invoice")):
        actions.append(Action("Cancel Invoice", reverse("refunds:invoice_cancel",
                                                        args=[invoice.pk]), danger=True))
    if may_request(RequestKind.CANCELLATION):
        actions.append(Action("Invoice Cancellation Request", reverse(
            "approvals:cancellation_request_create", args=[invoice.pk])))
    return actions


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
