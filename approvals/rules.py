"""Who may submit, decide or withdraw a Financial Approval request, and whether the clinic's
policy lets a refund, credit or cancellation be carried out now: each rule stated once, as a
predicate that returns the plain message of its refusal, or None when the action is allowed.

The services raise on them; the More Action menu and the request page offer only what they
allow. The invoice's own state (is anything left to refund? can it be cancelled?) is billing's
rule (billing/rules.py), which these build on."""

from billing.access import NO_PERMISSION
from billing.models import Invoice, Policy
from billing.rules import cancellation_refusal, refund_refusal

from .models import OPEN_STATUSES, FinancialRequest, RequestKind, RequestStatus

SUBMIT_PERMISSION = "approvals.add_financialrequest"
APPROVE_PERMISSION = "approvals.approve_financialrequest"

DIRECT_POLICY = "{clinic} {what} directly: no request is needed."
ALREADY_OPEN = (
    "{invoice} already has an open {kind} (#{pk}, {status}, by {requester}). "
    "Wait for its decision, or withdraw it first."
)
OWN_REQUEST = "You submitted this request, so someone else must decide it."
ALREADY_DECIDED = "This request was already decided by {who}: it is {status}."
NOT_OPEN = "This request is {status}: it can no longer be decided."
WITHDRAW_NOT_REQUESTER = "Only {who}, who submitted this request, can withdraw it."
WITHDRAW_NOT_WAITING = (
    "Only a request waiting for a decision can be withdrawn; this one is {status}."
)

NEEDS_REFUND_REQUEST = (
    "Refunds and credits at {clinic} need approval: submit an Invoice Refund Request first."
)
NEEDS_CANCELLATION_REQUEST = (
    "Cancellations at {clinic} need approval: submit an Invoice Cancellation Request first."
)
AWAITING_DECISION = (
    "The {kind} for {invoice} is waiting for a financial approver's decision; "
    "act once it is approved."
)
REQUEST_NOT_APPROVED = "{request} is {status}, not approved: it cannot be carried out."
REQUEST_OTHER_INVOICE = "{request} is for another invoice or another kind of action."
OPEN_REFUND_REQUEST = (
    "{invoice} has an open Invoice Refund Request (#{pk}, {status}). Settle it first (carry it "
    "out, or withdraw it while it waits for a decision), then cancel the invoice."
)

OpenRequests = dict[str, FinancialRequest]


def open_requests_of(invoice: Invoice) -> OpenRequests:
    """{kind: request} of the invoice's requests waiting for a decision or approved and not yet
    carried out (at most one per kind: a unique index says so)."""
    return {request.kind: request for request in FinancialRequest.objects.filter(
        invoice=invoice, status__in=OPEN_STATUSES).select_related("requested_by")}


def needs_approval(invoice: Invoice, kind: str) -> bool:
    """The clinic's policy for this kind of action."""
    clinic = invoice.clinic
    policy = clinic.refund_policy if kind == RequestKind.REFUND else clinic.cancellation_policy
    return policy == Policy.APPROVAL


def request_refusal(invoice: Invoice, kind: str, user, *,
                    open_requests: OpenRequests | None = None) -> str | None:
    """An Invoice Refund or Cancellation Request can be submitted by staff holding the
    permission, where the clinic needs approval, for an invoice the action could be carried out
    on, while no request of that kind is open on it."""
    if not user.has_perm(SUBMIT_PERMISSION):
        return NO_PERMISSION.format(action="submit requests")
    if not needs_approval(invoice, kind):
        what = ("refunds and credits invoices" if kind == RequestKind.REFUND
                else "cancels invoices")
        return DIRECT_POLICY.format(clinic=invoice.clinic.name, what=what)
    refusal = (refund_refusal(invoice) if kind == RequestKind.REFUND
               else cancellation_refusal(invoice))
    if refusal:
        return refusal
    if open_requests is None:
        open_requests = open_requests_of(invoice)
    if existing := open_requests.get(kind):
        return ALREADY_OPEN.format(
            invoice=invoice, kind=existing.get_kind_display(), pk=existing.pk,
            status=existing.get_status_display().lower(),
            requester=existing.requested_by.get_username())
    return None


def approval_refusal(invoice: Invoice, kind: str,
                     approval_request: FinancialRequest | None) -> str | None:
    """A refund, credit or cancellation can be carried out at once in a clinic that does not
    need approval, else only with the invoice's approved request of that kind.
    `approval_request`: the request that would authorise it (the one named, or the invoice's
    open request of that kind), or None."""
    if approval_request is None:
        if not needs_approval(invoice, kind):
            return None
        template = (NEEDS_REFUND_REQUEST if kind == RequestKind.REFUND
                    else NEEDS_CANCELLATION_REQUEST)
        return template.format(clinic=invoice.clinic.name)
    if approval_request.invoice_id != invoice.pk or approval_request.kind != kind:
        return REQUEST_OTHER_INVOICE.format(request=approval_request)
    if approval_request.status == RequestStatus.REQUESTED:
        return AWAITING_DECISION.format(kind=approval_request.get_kind_display(),
                                        invoice=invoice)
    if approval_request.status != RequestStatus.APPROVED:
        return REQUEST_NOT_APPROVED.format(
            request=approval_request, status=approval_request.get_status_display().lower())
    return None


def open_refund_request_refusal(invoice: Invoice, *,
                                open_requests: OpenRequests | None = None) -> str | None:
    """A cancelled invoice must not leave a refund request hanging open against it."""
    if open_requests is None:
        open_requests = open_requests_of(invoice)
    if open_request := open_requests.get(RequestKind.REFUND):
        return OPEN_REFUND_REQUEST.format(invoice=invoice, pk=open_request.pk,
                                          status=open_request.get_status_display().lower())
    return None


def decision_refusal(financial_request: FinancialRequest, user) -> str | None:
    """A request waiting for a decision is approved or rejected by a financial approver who did
    not submit it."""
    if not user.has_perm(APPROVE_PERMISSION):
        return NO_PERMISSION.format(action="approve or reject financial requests")
    if financial_request.requested_by_id == user.pk:
        return OWN_REQUEST
    if financial_request.status == RequestStatus.REQUESTED:
        return None
    status = financial_request.get_status_display().lower()
    if financial_request.decided_by_id:
        return ALREADY_DECIDED.format(who=financial_request.decided_by.get_username(),
                                      status=status)
    return NOT_OPEN.format(status=status)


def withdraw_refusal(financial_request: FinancialRequest, user) -> str | None:
    """Only its requester takes back a request, and only while it waits for a decision."""
    if financial_request.requested_by_id != user.pk:
        return WITHDRAW_NOT_REQUESTER.format(who=financial_request.requested_by.get_username())
    if financial_request.status != RequestStatus.REQUESTED:
        return WITHDRAW_NOT_WAITING.format(status=financial_request.get_status_display().lower())
    return None
