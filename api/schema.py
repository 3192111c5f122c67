import strawberry
from django.conf import settings
from strawberry.extensions import DisableIntrospection, QueryDepthLimiter

from .mutations.account_create import account_create
from .mutations.credit_note_create import credit_note_create
from .mutations.financial_request_approve import financial_request_approve
from .mutations.financial_request_reject import financial_request_reject
from .mutations.financial_request_withdraw import financial_request_withdraw
from .mutations.invoice_cancel import invoice_cancel
from .mutations.invoice_cancellation_request_create import invoice_cancellation_request_create
from .mutations.invoice_create import invoice_create
from .mutations.invoice_refund import invoice_refund
from .mutations.invoice_refund_request_create import invoice_refund_request_create
from .mutations.payment_create import payment_create
from .mutations.refund_mark_paid_out import refund_mark_paid_out
from .mutations.refund_retry import refund_retry
from .permissions import needs
from .queries import Query

WRITE = needs("billing:write")
APPROVE = needs("approvals:write")


@strawberry.type
class Mutation:
    account_create = strawberry.mutation(resolver=account_create, extensions=WRITE)
    invoice_create = strawberry.mutation(resolver=invoice_create, extensions=WRITE)
    payment_create = strawberry.mutation(resolver=payment_create, extensions=WRITE)
    invoice_refund = strawberry.mutation(resolver=invoice_refund, extensions=WRITE)
    credit_note_create = strawberry.mutation(resolver=credit_note_create, extensions=WRITE)
    invoice_cancel = strawberry.mutation(resolver=invoice_cancel, extensions=WRITE)
    invoice_refund_request_create = strawberry.mutation(
        resolver=invoice_refund_request_create, extensions=WRITE)
    invoice_cancellation_request_create = strawberry.mutation(
        resolver=invoice_cancellation_request_create, extensions=WRITE)
    financial_request_approve = strawberry.mutation(resolver=financial_request_approve,
                                                    extensions=APPROVE)
    financial_request_reject = strawberry.mutation(resolver=financial_request_reject,
                                                   extensions=APPROVE)
    financial_request_withdraw = strawberry.mutation(resolver=financial_request_withdraw,
                                                     extensions=WRITE)
    refund_retry = strawberry.mutation(resolver=refund_retry, extensions=WRITE)
    refund_mark_paid_out = strawberry.mutation(resolver=refund_mark_paid_out, extensions=WRITE)


def build_schema(*, introspection: bool) -> strawberry.Schema:
    depth = settings.API_MAX_QUERY_DEPTH
    extensions = [lambda: QueryDepthLimiter(max_depth=depth)]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)


schema = build_schema(introspection=settings.API_INTROSPECTION)
