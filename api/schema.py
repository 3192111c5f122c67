import strawberry
from django.conf import settings
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from .cost import query_cost_rule
from .faults import FaultMasking
from .mutations.account_create import AccountCreatePayload, account_create
from .mutations.credit_note_create import CreditNoteCreatePayload, credit_note_create
from .mutations.financial_request_approve import financial_request_approve
from .mutations.financial_request_reject import financial_request_reject
from .mutations.financial_request_withdraw import financial_request_withdraw
from .mutations.financial_requests_approve import financial_requests_approve
from .mutations.financial_requests_reject import financial_requests_reject
from .mutations.invoice_cancel import InvoiceCancelPayload, invoice_cancel
from .mutations.invoice_cancellation_request_create import invoice_cancellation_request_create
from .mutations.invoice_create import InvoiceCreatePayload, invoice_create
from .mutations.invoice_refund import InvoiceRefundPayload, invoice_refund
from .mutations.invoice_refund_request_create import invoice_refund_request_create
from .mutations.payment_create import PaymentCreatePayload, payment_create
from .mutations.refund_mark_paid_out import refund_mark_paid_out
from .mutations.refund_retry import refund_retry
from .payloads import FinancialRequestPayload, FinancialRequestsDecisionPayload, RefundPayload
from .permissions import needs
from .queries import Query
from .scalars import SCALAR_OVERRIDES

WRITE = needs("billing:write")
DOCUMENTS_CACHED = 256
APPROVE = needs("approvals:write")


@strawberry.type
class Mutation:
    """Each mutation returns its payload, or null when the call was refused before it ran (a
    missing scope): several mutations in one request stand or fall on their own."""

    account_create: AccountCreatePayload | None = strawberry.mutation(
        resolver=account_create, extensions=WRITE)
    invoice_create: InvoiceCreatePayload | None = strawberry.mutation(
        resolver=invoice_create, extensions=WRITE)
    payment_create: PaymentCreatePayload | None = strawberry.mutation(
        resolver=payment_create, extensions=WRITE)
    invoice_refund: InvoiceRefundPayload | None = strawberry.mutation(
        resolver=invoice_refund, extensions=WRITE)
    credit_note_create: CreditNoteCreatePayload | None = strawberry.mutation(
        resolver=credit_note_create, extensions=WRITE)
    invoice_cancel: InvoiceCancelPayload | None = strawberry.mutation(
        resolver=invoice_cancel, extensions=WRITE)
    invoice_refund_request_create: FinancialRequestPayload | None = strawberry.mutation(
        resolver=invoice_refund_request_create, extensions=WRITE)
    invoice_cancellation_request_create: FinancialRequestPayload | None = strawberry.mutation(
        resolver=invoice_cancellation_request_create, extensions=WRITE)
    financial_request_approve: FinancialRequestPayload | None = strawberry.mutation(
        resolver=financial_request_approve, extensions=APPROVE)
    financial_request_reject: FinancialRequestPayload | None = strawberry.mutation(
        resolver=financial_request_reject, extensions=APPROVE)
    financial_requests_approve: FinancialRequestsDecisionPayload | None = strawberry.mutation(
        resolver=financial_requests_approve, extensions=APPROVE, description=(
            f"Approve up to {settings.API_MAX_BULK_IDS} requests, each on its own: one refused "
            "leaves the others approved."))
    financial_requests_reject: FinancialRequestsDecisionPayload | None = strawberry.mutation(
        resolver=financial_requests_reject, extensions=APPROVE, description=(
            f"Reject up to {settings.API_MAX_BULK_IDS} requests with one remark, each on its "
            "own."))
    financial_request_withdraw: FinancialRequestPayload | None = strawberry.mutation(
        resolver=financial_request_withdraw, extensions=WRITE)
    refund_retry: RefundPayload | None = strawberry.mutation(
        resolver=refund_retry, extensions=WRITE)
    refund_mark_paid_out: RefundPayload | None = strawberry.mutation(
        resolver=refund_mark_paid_out, extensions=WRITE)

def build_schema(*, introspection: bool) -> strawberry.Schema:
    # Integrations send the same few documents again and again: each is parsed and validated
    # once per worker, up to DOCUMENTS_CACHED. Validation results are cached by document and
    # rules, so the rules are made once, not per request.
    # What a request may cost is bounded before anything runs: the document's size in tokens
    # (checked while parsing), its depth, its aliases and the fields it could resolve
    # (validation rules; api.cost).
    cost_rules = [
        *QueryDepthLimiter(max_depth=settings.API_MAX_QUERY_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.API_MAX_ALIASES).validation_rules,
        query_cost_rule(limit=settings.API_MAX_QUERY_COST, page_size=settings.API_MAX_PAGE_SIZE,
                        bulk_size=settings.API_MAX_BULK_IDS),
    ]
    extensions = [
        lambda: MaxTokensLimiter(max_token_count=settings.API_MAX_QUERY_TOKENS),
        lambda: ParserCache(maxsize=DOCUMENTS_CACHED),
        lambda: ValidationCache(maxsize=DOCUMENTS_CACHED),
        lambda: AddValidationRules(cost_rules),
        FaultMasking,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions,
                             scalar_overrides=SCALAR_OVERRIDES)


schema = build_schema(introspection=settings.API_INTROSPECTION)
