import strawberry
from strawberry import Info

from approvals.services import request_reject

from ..lookups import request_for, user_of
from ..payloads import FinancialRequestPayload, request_payload


def financial_request_reject(info: Info, request_id: strawberry.ID,
                             remarks: str) -> FinancialRequestPayload:
    return request_payload(lambda: request_reject(
        financial_request=request_for(info, request_id), remarks=remarks, actor=user_of(info)))
