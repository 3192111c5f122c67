import strawberry
from strawberry import Info

from billing.exceptions import BusinessRuleError
from refunds.services import credit_note_create

from ..lookups import dispute_reason_for, invoice_for, payment_for, user_of
from ..types import CreditNoteType


@strawberry.type
class InvoiceRefundPayload:
    credit_note: CreditNoteType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


def invoice_refund(info: Info, invoice_id: strawberry.ID, dispute_reason_id: strawberry.ID,
                   payment_id: strawberry.ID | None = None,
                   remarks: str = "") -> InvoiceRefundPayload:
    """Refund everything still creditable on a paid invoice."""
    try:
        invoice = invoice_for(info, invoice_id)
        note = credit_note_create(
            invoice=invoice, full=True, dispute_reason=dispute_reason_for(dispute_reason_id),
            payment=payment_for(invoice, payment_id), remarks=remarks, actor=user_of(info))
    except BusinessRuleError as error:
        return InvoiceRefundPayload(errors=[error.message])
    return InvoiceRefundPayload(credit_note=note)
