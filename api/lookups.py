"""Objects named by id in API calls, looked up within the caller's clinics. Another clinic's
object is simply not found."""

from approvals.models import FinancialRequest
from billing.breakdown import LINE_NOT_ON_INVOICE, CreditLineInput
from billing.exceptions import BusinessRuleError
from billing.models import (
    Account,
    Clinic,
    DisputeReason,
    Invoice,
    Payment,
    PaymentMethod,
    TaxRate,
)
from billing.selectors import visible_to
from refunds.models import Refund

NOT_FOUND = "No {what} with id {id} in your clinics."
REASON_NOT_FOUND = "No dispute reason with id {id}: see the disputeReasons query."


BIGGEST_ID = 2**63 - 1


def object_id(value) -> int | None:
    """The row id an ID argument names: ASCII digits within the database's range, else None.
    (int() would also read " 12", "1_2" and other scripts' digits.)"""
    text = str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    number = int(text)
    return number if 0 < number <= BIGGEST_ID else None


def _get(queryset, what: str, pk):
    number = object_id(pk)
    try:
        if number is None:
            raise queryset.model.DoesNotExist
        return queryset.get(pk=number)
    except queryset.model.DoesNotExist:
        raise BusinessRuleError(NOT_FOUND.format(what=what, id=pk)) from None


def user_of(info):
    return info.context.request.user


def clinic_for(info, pk) -> Clinic:
    return _get(visible_to(Clinic.objects.all(), user=user_of(info)), "clinic", pk)


def account_for(info, pk) -> Account:
    return _get(visible_to(Account.objects.select_related("clinic"), user=user_of(info)),
                "account", pk)


def invoice_for(info, pk) -> Invoice:
    return _get(visible_to(Invoice.objects.select_related("clinic"), user=user_of(info)),
                "invoice", pk)


def payment_for(invoice: Invoice, pk) -> Payment | None:
    if pk is None:
        return None
    return _get(Payment.objects.filter(invoice=invoice), f"payment on {invoice}", pk)


def credit_lines_for(invoice: Invoice, lines) -> list[CreditLineInput]:
    """The lines an API call names (`invoiceLineId`, `amount`), each a line of `invoice`; any
    other id is refused with the planner's own message."""
    by_id = {line.pk: line for line in invoice.lines.all()}
    resolved = []
    for line in lines:
        invoice_line = by_id.get(object_id(line.invoice_line_id))
        if invoice_line is None:
            raise BusinessRuleError(LINE_NOT_ON_INVOICE.format(invoice=invoice))
        resolved.append(CreditLineInput(invoice_line, line.amount))
    return resolved


def payment_method_for(clinic: Clinic, pk) -> PaymentMethod:
    return _get(PaymentMethod.objects.filter(clinic=clinic), f"payment method of {clinic.name}",
                pk)


def tax_rate_for(clinic: Clinic, pk) -> TaxRate:
    return _get(TaxRate.objects.filter(clinic=clinic, is_active=True),
                f"tax rate of {clinic.name}", pk)


def dispute_reason_for(pk) -> DisputeReason:
    """Dispute reasons are shared by every clinic."""
    number = object_id(pk)
    reason = DisputeReason.objects.filter(pk=number).first() if number else None
    if reason is None:
        raise BusinessRuleError(REASON_NOT_FOUND.format(id=pk))
    return reason


def refund_for(info, pk) -> Refund:
    return _get(visible_to(Refund.objects.all(), user=user_of(info),
                           clinic_path="invoice__clinic"), "refund", pk)


def visible_requests(info):
    """The financial requests of the caller's clinics."""
    return visible_to(FinancialRequest.objects.all(), user=user_of(info))


def request_for(info, pk) -> FinancialRequest:
    return _get(visible_requests(info), "financial request", pk)
