import strawberry
from strawberry import Info

from approvals.services import refund_request_create

from ..lookups import invoice_for, user_of
from ..payloads import FinancialRequestPayload, RequestLineInput, request_payload


def invoice_refund_request_create(info: Info, invoice_id: strawberry.ID, remarks: str,
                                  lines: list[RequestLineInput] | None = None,
                                  ) -> FinancialRequestPayload:
    """Ask for approval to refund or credit; with lines, exactly those amounts."""
    return request_payload(lambda: refund_request_create(
        invoice=invoice_for(info, invoice_id), remarks=remarks, actor=user_of(info),
        lines=[(line.invoice_line_id, line.amount) for line in lines] if lines else None))
