import strawberry
from strawberry import Info

from approvals.services import refund_request_create

from ..lookups import credit_lines_for, invoice_for, user_of
from ..payloads import FinancialRequestPayload, RequestLineInput, request_payload


def invoice_refund_request_create(info: Info, invoice_id: strawberry.ID, remarks: str,
                                  lines: list[RequestLineInput] | None = None,
                                  ) -> FinancialRequestPayload:
    """Ask for approval to refund or credit; with lines, exactly those amounts."""
    def submit():
        invoice = invoice_for(info, invoice_id)
        return refund_request_create(
            invoice=invoice, remarks=remarks, actor=user_of(info),
            lines=credit_lines_for(invoice, lines) if lines else None)

    return request_payload(submit)
