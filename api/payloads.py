"""Payloads shared by several mutations."""

from collections.abc import Callable
from decimal import Decimal

import strawberry

from billing.exceptions import BusinessRuleError

from .types import FinancialRequestType, RefundType


@strawberry.type
class FinancialRequestPayload:
    financial_request: FinancialRequestType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


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
