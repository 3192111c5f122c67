"""The More Action menu of an invoice: only what this invoice, its clinic's policy and the
user's permissions allow. The services still check every rule when an action is taken; this
only keeps staff from being offered what would be refused."""

from dataclasses import dataclass

from django.urls import reverse

from approvals.models import FinancialRequest, RequestKind, RequestStatus
from billing.models import Invoice, InvoiceStatus, Policy


@dataclass(frozen=True)
class Action:
    label: str
    url: str
    method: str = "get"  # "post" for one-click actions
    danger: bool = False


def invoice_actions(*, invoice: Invoice, user) -> list[Action]:
    actions: list[Action] = []
    clinic = invoice.clinic
    status = invoice.status
    live = status not in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED)
    creditable = live and invoice.amount_credited < invoice.total
    open_requests = {
        request.kind: request.status
        for request in FinancialRequest.objects.filter(
            invoice=invoice, status__in=[RequestStatus.REQUESTED, RequestStatus.APPROVED])
    }
    may_request = user.has_perm("approvals.add_financialrequest")

    def allowed(kind: str, policy: str, permission: str) -> bool:
        if not user.has_perm(permission):
            return False
        return policy == Policy.DIRECT or open_requests.get(kind) == RequestStatus.APPROVED

    if status == InvoiceStatus.DRAFT and user.has_perm("billing.add_invoice"):
        actions.append(Action("Discard draft", reverse("billing:invoice_discard", args=[
            invoice.pk]), method="post", danger=True))
    if (status in (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)
            and invoice.balance_due > 0 and user.has_perm("billing.record_payment")):
        actions.append(Action("Record payment",
                              reverse("billing:payment_create", args=[invoice.pk])))

    refund_url = reverse("refunds:credit_note_create", args=[invoice.pk])
    if creditable and invoice.net_paid > 0 and allowed(
            RequestKind.REFUND, clinic.refund_policy, "billing.refund_invoice"):
        actions.append(Action("Refund", f"{refund_url}?full=1"))
    if creditable and allowed(RequestKind.REFUND, clinic.refund_policy, "billing.credit_invoice"):
        actions.append(Action("Credit lines", refund_url))
    if (creditable and clinic.refund_policy == Policy.APPROVAL and may_request
            and RequestKind.REFUND not in open_requests):
        actions.append(Action("Invoice Refund Request", reverse(
            "approvals:refund_request_create", args=[invoice.pk])))

    cancellable = (status == InvoiceStatus.ISSUED and invoice.net_paid == 0
                   and invoice.balance_due > 0)
    if cancellable and allowed(RequestKind.CANCELLATION, clinic.cancellation_policy,
                               "billing.cancel_invoice"):
        actions.append(Action("Cancel Invoice", reverse("refunds:invoice_cancel",
                                                        args=[invoice.pk]), danger=True))
    if (cancellable and clinic.cancellation_policy == Policy.APPROVAL and may_request
            and RequestKind.CANCELLATION not in open_requests):
        actions.append(Action("Invoice Cancellation Request", reverse(
            "approvals:cancellation_request_create", args=[invoice.pk])))
    return actions
