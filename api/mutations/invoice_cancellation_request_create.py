import strawberry
from strawberry import Info

from approvals.services import cancellation_request_create

from ..lookups import invoice_for, user_of
from ..payloads import FinancialRequestPayload, request_payload


def invoice_cancellation_request_create(info: Info, invoice_id: strawberry.ID,
                                        remarks: str) -> FinancialRequestPayload:
    return request_payload(lambda: cancellation_request_create(
        invoice=invoice_for(info, invoice_id), remarks=remarks, actor=user_of(info)))
