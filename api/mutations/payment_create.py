from decimal import Decimal

import strawberry
from strawberry import Info

from billing.exceptions import BusinessRuleError
from billing.services import payment_record

from ..lookups import invoice_for, payment_method_for, user_of
from ..queries import with_invoice_details
from ..types import InvoiceType, PaymentType


@strawberry.type
class PaymentCreatePayload:
    payment: PaymentType | None = None
    invoice: InvoiceType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


def payment_create(info: Info, invoice_id: strawberry.ID, amount: Decimal,
                   payment_method_id: strawberry.ID, reference: str = "") -> PaymentCreatePayload:
    try:
        invoice = invoice_for(info, invoice_id)
        payment = payment_record(invoice=invoice, amount=amount, reference=reference,
                                 method=payment_method_for(invoice.clinic, payment_method_id),
                                 actor=user_of(info))
    except BusinessRuleError as error:
        return PaymentCreatePayload(errors=[error.message])
    return PaymentCreatePayload(
        payment=payment,
        invoice=with_invoice_details(type(invoice).objects.filter(pk=invoice.pk)).get(),
    )
