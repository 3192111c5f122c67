import strawberry
from strawberry import Info

from ..payloads import FinancialRequestsDecisionPayload, decisions_payload


def financial_requests_approve(info: Info, request_ids: list[strawberry.ID],
                               remarks: str = "") -> FinancialRequestsDecisionPayload:
    return decisions_payload(info, request_ids, approve=True, remarks=remarks)
