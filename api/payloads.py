"""Payloads shared by several mutations."""

from collections.abc import Callable, Sequence
from decimal import Decimal

import strawberry
from django.conf import settings
from strawberry import Info

from approvals.models import RequestStatus
from approvals.services import NOT_FOUND as REQUEST_NOT_FOUND
from approvals.services import requests_decide_many
from billing.exceptions import BusinessRuleError

from .cost import one_per_id
from .lookups import object_id, user_of, visible_requests
from .queries import with_request_details
from .types import FinancialRequestType, RefundType

NO_REQUESTS = "Name at least one request to decide."
TOO_MANY_REQUESTS = (
    "Decide at most {limit} requests in one call; this one names {count}: send the others in "
    "another call."
)


@strawberry.type
class FinancialRequestPayload:
    financial_request: FinancialRequestType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


@strawberry.type
class FinancialRequestDecisionOutcome:
    request_id: strawberry.ID = strawberry.field(description="The id as it was given.")
    ok: bool = strawberry.field(description=(
        "The decision was recorded (an approval of a request that needs two approvers leaves "
        "it REQUESTED until the second)."))
    financial_request: FinancialRequestType | None = strawberry.field(
        default=None, description="The request as it now is; null when it was refused.")
    error: str | None = strawberry.field(
        default=None, description="Why it could not be decided; null when ok.")


@strawberry.type
class FinancialRequestsDecisionPayload:
    outcomes: list[FinancialRequestDecisionOutcome] = strawberry.field(
        default_factory=list, metadata=one_per_id(),
        description="One per request, in the order the ids were given (a repeated id once).")
    approved: int = strawberry.field(
        default=0, description=(
            "How many requests this call approved (a first of two approvals is not counted)."))
    rejected: int = strawberry.field(default=0,
                                     description="How many requests this call rejected.")
    errors: list[str] = strawberry.field(
        default_factory=list,
        description="Why nothing was decided (no ids, too many); each request's own refusal is "
                    "in its outcome.")


@strawberry.type
class RefundPayload:
    refund: RefundType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


@strawberry.input
class RequestLineInput:
    invoice_line_id: strawberry.ID
    amount: Decimal | None = strawberry.field(
        default=None, description="Without tax; omitted = all that remains on the line.")


def request_payload(action: Callable) -> FinancialRequestPayload:
    try:
        return FinancialRequestPayload(financial_request=action())
    except BusinessRuleError as error:
        return FinancialRequestPayload(errors=[error.message])


def refund_payload(action: Callable) -> RefundPayload:
    try:
        return RefundPayload(refund=action())
    except BusinessRuleError as error:
        return RefundPayload(errors=[error.message])


def decisions_payload(info: Info, request_ids: Sequence, *, approve: bool,
                      remarks: str) -> FinancialRequestsDecisionPayload:
    """Approve or reject the requests named, each in its own transaction (the same service as
    the Financial Approval screen): one refused leaves the others decided. An id that is not a
    row id is simply not one of the caller's requests."""
    named: dict = {}  # row id (or the text, when it is none) -> the id as given, first seen
    for given in request_ids:
        named.setdefault(object_id(given) or str(given), str(given))
    if not named:
        return FinancialRequestsDecisionPayload(errors=[NO_REQUESTS])
    if len(named) > settings.API_MAX_BULK_IDS:
        return FinancialRequestsDecisionPayload(errors=[TOO_MANY_REQUESTS.format(
            limit=settings.API_MAX_BULK_IDS, count=len(named))])
    visible = visible_requests(info)
    # Decided in ascending id order whatever the order given: under an Idempotency-Key the
    # decisions share the key's transaction and keep their row locks to its end, so concurrent
    # bulk calls lock in one order and never wait on each other in a circle.
    decided = {outcome.request_id: outcome for outcome in requests_decide_many(
        request_ids=sorted(key for key in named if isinstance(key, int)), actor=user_of(info),
        approve=approve, remarks=remarks, visible=visible)}
    shown = with_request_details(visible).in_bulk(
        [pk for pk, outcome in decided.items() if outcome.ok])
    outcomes = []
    for key, given in named.items():
        outcome = decided.get(key)
        if outcome is None:
            outcomes.append(FinancialRequestDecisionOutcome(
                request_id=given, ok=False, error=REQUEST_NOT_FOUND.format(pk=given)))
        elif outcome.ok:
            outcomes.append(FinancialRequestDecisionOutcome(
                request_id=given, ok=True,
                financial_request=shown.get(key, outcome.financial_request)))
        else:
            outcomes.append(FinancialRequestDecisionOutcome(request_id=given, ok=False,
                                                            error=outcome.refusal))
    statuses = [outcome.financial_request.status for outcome in decided.values() if outcome.ok]
    return FinancialRequestsDecisionPayload(
        outcomes=outcomes, approved=statuses.count(RequestStatus.APPROVED),
        rejected=statuses.count(RequestStatus.REJECTED))
