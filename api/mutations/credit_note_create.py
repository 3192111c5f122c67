from decimal import Decimal

import strawberry
from strawberry import Info

from billing.exceptions import BusinessRuleError
from refunds.services import credit_note_create as credit_note_create_service

from ..lookups import credit_lines_for, dispute_reason_for, invoice_for, payment_for, user_of
from ..types import CreditNoteType


@strawberry.input
class CreditNoteLineInput:
    invoice_line_id: strawberry.ID
    amount: Decimal | None = strawberry.field(
        default=None, description="Without tax; omitted = all that remains on the line.")


@strawberry.type
class CreditNoteCreatePayload:
    credit_note: CreditNoteType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


def credit_note_create(info: Info, invoice_id: strawberry.ID, dispute_reason_id: strawberry.ID,
                       lines: list[CreditNoteLineInput], payment_id: strawberry.ID | None = None,
                       remarks: str = "") -> CreditNoteCreatePayload:
    """Credit lines; whatever goes beyond the balance due is refunded."""
    try:
        invoice = invoice_for(info, invoice_id)
        note = credit_note_create_service(
            invoice=invoice, dispute_reason=dispute_reason_for(dispute_reason_id),
            lines=credit_lines_for(invoice, lines),
            payment=payment_for(invoice, payment_id), remarks=remarks, actor=user_of(info))
    except BusinessRuleError as error:
        return CreditNoteCreatePayload(errors=[error.message])
    return CreditNoteCreatePayload(credit_note=note)
