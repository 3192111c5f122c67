import strawberry
from strawberry import Info

from approvals.services import request_withdraw

from ..lookups import request_for, user_of
from ..payloads import FinancialRequestPayload, request_payload


def financial_request_withdraw(info: Info, request_id: strawberry.ID) -> FinancialRequestPayload:
    return request_payload(lambda: request_withdraw(
        financial_request=request_for(info, request_id), actor=user_of(info)))
