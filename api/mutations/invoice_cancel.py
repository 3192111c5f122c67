import strawberry
from strawberry import Info

from billing.exceptions import BusinessRuleError
from refunds.services import invoice_cancel as invoice_cancel_service

from ..lookups import invoice_for, user_of
from ..queries import with_invoice_details
from ..types import CreditNoteType, InvoiceType


@strawberry.type
class InvoiceCancelPayload:
    invoice: InvoiceType | None = None
    credit_note: CreditNoteType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


def invoice_cancel(info: Info, invoice_id: strawberry.ID, remarks: str) -> InvoiceCancelPayload:
    try:
        invoice = invoice_for(info, invoice_id)
        note = invoice_cancel_service(invoice=invoice, remarks=remarks, actor=user_of(info))
    except BusinessRuleError as error:
        return InvoiceCancelPayload(errors=[error.message])
    return InvoiceCancelPayload(
        invoice=with_invoice_details(type(invoice).objects.filter(pk=invoice.pk)).get(),
        credit_note=note,
    )
