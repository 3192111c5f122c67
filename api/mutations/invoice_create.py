from decimal import Decimal

import strawberry
from strawberry import Info

from billing.exceptions import BusinessRuleError
from billing.services import LineInput
from billing.services import invoice_create as invoice_create_service

from ..lookups import account_for, tax_rate_for, user_of
from ..queries import with_invoice_details
from ..types import InvoiceType

NO_LINES = "Add at least one line to the invoice."


@strawberry.input
class InvoiceLineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate_id: strawberry.ID


@strawberry.type
class InvoiceCreatePayload:
    invoice: InvoiceType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


def invoice_create(info: Info, account_id: strawberry.ID, lines: list[InvoiceLineInput],
                   issue: bool = True) -> InvoiceCreatePayload:
    try:
        account = account_for(info, account_id)
        if not lines:
            raise BusinessRuleError(NO_LINES)
        specs = [LineInput(description=line.description, quantity=line.quantity,
                           unit_price=line.unit_price,
                           tax_rate=tax_rate_for(account.clinic, line.tax_rate_id))
                 for line in lines]
        invoice = invoice_create_service(clinic=account.clinic, account=account, lines=specs,
                                         issue=issue, actor=user_of(info))
    except BusinessRuleError as error:
        return InvoiceCreatePayload(errors=[error.message])
    return InvoiceCreatePayload(invoice=with_invoice_details(
        type(invoice).objects.filter(pk=invoice.pk)).get())
