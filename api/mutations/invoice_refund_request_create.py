import strawberry
from strawberry import Info

from approvals.services import refund_request_create

from ..lookups import credit_lines_for, dispute_reason_for, invoice_for, user_of
from ..payloads import FinancialRequestPayload, RequestLineInput, request_payload


def invoice_refund_request_create(info: Info, invoice_id: strawberry.ID, remarks: str,
                                  lines: list[RequestLineInput] | None = None,
                                  dispute_reason_id: strawberry.ID | None = None,
                                  ) -> FinancialRequestPayload:
    """Ask for approval to refund or credit; with lines, exactly those amounts. The clinic's
    approval rules for the credit note this would produce, and the dispute reason if given, say
    how many approvers it needs (approvalsNeeded); one that needs none is refused."""
    def submit():
        invoice = invoice_for(info, invoice_id)
        return refund_request_create(
            invoice=invoice, remarks=remarks, actor=user_of(info),
            lines=credit_lines_for(invoice, lines) if lines else None,
            dispute_reason=(dispute_reason_for(dispute_reason_id)
                            if dispute_reason_id is not None else None))

    return request_payload(submit)
