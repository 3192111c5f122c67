"""Who may submit, decide or withdraw a Financial Approval request, and whether the clinic's
policy lets a refund, credit or cancellation be carried out now: each rule stated once, as a
predicate that returns the plain message of its refusal, or None when the action is allowed.

The services raise on them; the More Action menu and the request page offer only what they
allow. The invoice's own state (is anything left to refund? can it be cancelled?) is billing's
rule (billing/rules.py), which these build on."""

from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from billing.access import NO_PERMISSION
from billing.models import Clinic, DisputeReason, Invoice, Policy
from billing.money import format_money, quantum
from billing.rules import cancellation_refusal, refund_refusal

from .models import (
    APPROVERS_WORDS,
    OPEN_STATUSES,
    ApprovalRule,
    Approvers,
    FinancialRequest,
    RequestKind,
    RequestStatus,
)

SUBMIT_PERMISSION = "approvals.add_financialrequest"
APPROVE_PERMISSION = "approvals.approve_financialrequest"

DIRECT_POLICY = "{clinic} {what} directly: no request is needed."
ALREADY_OPEN = (
    "{invoice} already has an open {kind} (#{pk}, {status}, by {requester}). "
    "Wait for its decision, or withdraw it first."
)
OWN_REQUEST = "You submitted this request, so someone else must decide it."
APPROVED_ALREADY_BY_YOU = (
    "You approved this request already: it needs a second approval, from a different approver."
)
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
AMOUNT_NEEDS_REFUND_REQUEST = (
    "At {clinic} a refund or credit of {amount}{reason} needs {approvers}: submit an Invoice "
    "Refund Request first."
)
AMOUNT_NEEDS_CANCELLATION_REQUEST = (
    "At {clinic} a cancellation of {amount} needs {approvers}: submit an Invoice Cancellation "
    "Request first."
)
STALE_REQUEST = (
    "{invoice} changed after {request} was submitted or approved, so its breakdown is no longer "
    "the one shown to its approvers: they must confirm the new breakdown before it can be "
    "carried out."
)
REQUEST_PAST_EXPIRY = (
    "{request} expired on {when}: it was not carried out in time. Submit a new request if it "
    "is still needed."
)
APPROVED_BY_TOO_FEW = (
    "{request} needed {approved} but, under the clinic's rules, this credit note of {amount} "
    "needs {approvers}: carry out what was approved, with its reason."
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


def approval_rules(clinic: Clinic, kind: str) -> list[ApprovalRule]:
    """The clinic's rules for `kind`, in order, with their reasons; read once per clinic object
    (a page asking several questions of one invoice reads them once)."""
    cache = clinic.__dict__.setdefault("_approval_rules", {})
    if kind not in cache:
        cache[kind] = list(
            ApprovalRule.objects.filter(clinic=clinic, kind=kind).order_by("position", "pk")
            .prefetch_related(Prefetch("reasons", queryset=DisputeReason.objects.order_by("name"))))
        for rule in cache[kind]:
            rule.clinic = clinic
    return cache[kind]


def approval_rule_for(clinic: Clinic, kind: str, *, amount: Decimal,
                      reason: DisputeReason | None = None) -> ApprovalRule | None:
    """The first of the clinic's rules that matches a credit note of `amount` (its total) for
    `reason`; None when none does."""
    for rule in approval_rules(clinic, kind):
        if rule.matches(amount=amount, reason=reason):
            return rule
    return None


def approvers_needed(clinic: Clinic, kind: str, *, amount: Decimal,
                     reason: DisputeReason | None = None) -> int:
    """0, 1 or 2. Where no rule matches, one approver: a gap in the rules never lets money
    leave unseen."""
    rule = approval_rule_for(clinic, kind, amount=amount, reason=reason)
    return 1 if rule is None else rule.approvers_needed


def may_need_approval(clinic: Clinic, kind: str) -> bool:
    """Whether an action of `kind` can need an approver at the clinic (then its staff may
    submit requests of that kind): a rule asking for approvers comes before any rule that
    matches everything, or no rule matches everything (a gap asks one approver)."""
    for rule in approval_rules(clinic, kind):
        if rule.approvers != Approvers.NONE:
            return True
        if rule.matches_everything:
            return False
    return True


def clinic_policy(clinic: Clinic, kind: str) -> str:
    """The clinic's policy in one word, as the API reports it: `direct` when no action of this
    kind needs an approver, else `approval`."""
    return Policy.APPROVAL if may_need_approval(clinic, kind) else Policy.DIRECT


def policy_summary(clinic: Clinic, kind: str) -> str:
    """The clinic's rules for `kind` in a few words, for Home: "direct", "approval required",
    "two approvals required" or "by amount and reason"."""
    rules = approval_rules(clinic, kind)
    if not may_need_approval(clinic, kind):
        return "direct"
    if len(rules) == 1 and rules[0].matches_everything:
        return {Approvers.ONE: "approval required",
                Approvers.TWO: "two approvals required"}[rules[0].approvers]
    return "by amount and reason" if rules else "approval required"


def needs_approval(invoice: Invoice, kind: str) -> bool:
    """Whether an action of `kind` on the invoice may need an approver (the amount and reason
    decide in the end: approval_rule_for)."""
    return may_need_approval(invoice.clinic, kind)


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


def approval_refusal(invoice: Invoice, kind: str, approval_request: FinancialRequest | None,
                     *, amount: Decimal | None = None, reason: DisputeReason | None = None,
                     named: bool = True) -> str | None:
    """A refund, credit or cancellation producing a credit note of `amount` (its total) for
    `reason` is carried out at once where the clinic's first matching rule needs no approver,
    else only with the invoice's approved request of that kind, approved by as many approvers
    as the rule needs. `approval_request`: the request that would authorise it (the one named,
    or the invoice's open request of that kind: `named` False), or None. Without `amount` (not
    known yet, as on a menu), the smallest credit stands for it. Where no approver is needed,
    an open request found on the invoice is left alone (its breakdown may go stale)."""
    if amount is None:
        amount = quantum(invoice.currency)
    rule = approval_rule_for(invoice.clinic, kind, amount=amount, reason=reason)
    needed = 1 if rule is None else rule.approvers_needed
    if needed == 0 and not named:
        approval_request = None
    if approval_request is None:
        if needed == 0:
            return None
        if needed == 1 and [rule] == approval_rules(invoice.clinic, kind) \
                and rule.matches_everything:
            # one rule for everything: the clinic's policy, in its own words
            template = (NEEDS_REFUND_REQUEST if kind == RequestKind.REFUND
                        else NEEDS_CANCELLATION_REQUEST)
            return template.format(clinic=invoice.clinic.name)
        template = (AMOUNT_NEEDS_REFUND_REQUEST if kind == RequestKind.REFUND
                    else AMOUNT_NEEDS_CANCELLATION_REQUEST)
        return template.format(clinic=invoice.clinic.name, amount=format_money(
            amount, invoice.currency), approvers=APPROVERS_WORDS[_approvers(needed)],
            reason=f" for “{reason.name}”" if reason is not None and rule is not None
            and rule.reasons.all() else "")
    if approval_request.invoice_id != invoice.pk or approval_request.kind != kind:
        return REQUEST_OTHER_INVOICE.format(request=approval_request)
    if approval_request.status == RequestStatus.REQUESTED and approval_request.stale:
        return STALE_REQUEST.format(request=approval_request, invoice=invoice)
    if approval_request.status == RequestStatus.REQUESTED:
        return AWAITING_DECISION.format(kind=approval_request.get_kind_display(),
                                        invoice=invoice)
    if approval_request.status != RequestStatus.APPROVED:
        return REQUEST_NOT_APPROVED.format(
            request=approval_request, status=approval_request.get_status_display().lower())
    if approval_request.expires_at is not None and approval_request.expires_at <= timezone.now():
        # past its expiry, before the periodic job has marked it: expired all the same
        return REQUEST_PAST_EXPIRY.format(
            request=approval_request,
            when=timezone.localtime(approval_request.expires_at).strftime("%d %b %Y %H:%M %Z"))
    if approval_request.approvals_needed < needed:
        return APPROVED_BY_TOO_FEW.format(
            request=approval_request, amount=format_money(amount, invoice.currency),
            approved=APPROVERS_WORDS[_approvers(approval_request.approvals_needed)],
            approvers=APPROVERS_WORDS[_approvers(needed)])
    return None


def _approvers(needed: int) -> str:
    return {0: Approvers.NONE, 1: Approvers.ONE}.get(needed, Approvers.TWO)


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
        if any(approval.approved_by_id == user.pk and
               approval.round == financial_request.approval_round
               for approval in financial_request.approvals.all()):
            return APPROVED_ALREADY_BY_YOU
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
