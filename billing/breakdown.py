"""What a credit note would do, computed before anything is written: per line net, tax and
total; the part that reduces the balance due and the part paid back; which payments receive it.

The same computation serves the preview staff confirm and the service that writes the note."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .exceptions import BusinessRuleError
from .models import Invoice, InvoiceLine, Payment
from .money import ZERO, format_money, has_currency_places, minor_units, round_money
from .rules import refund_refusal

NO_LINES = "Choose at least one line to credit."
LINE_NOT_ON_INVOICE = "That line is not on {invoice}: choose lines of this invoice only."
LINE_TWICE = "“{line}” is chosen twice: choose each line once."
LINE_NOTHING_LEFT = "“{line}” is already fully credited."
LINE_AMOUNT_NOT_POSITIVE = "Enter an amount greater than zero for “{line}”."
LINE_AMOUNT_PLACES = (
    "{currency} amounts have at most {places} decimals; {amount} for “{line}” has more."
)
LINE_OVER = (
    "At most {remaining} (without tax) can still be credited on “{line}”; {amount} is more."
)
INVOICE_OVER = "The credit of {amount} is more than the {remaining} still creditable on {invoice}."
REFUND_OVER_PAID = (
    "Only {refundable} paid on {invoice} can still be refunded; this credit would refund {amount}."
)
PAYMENT_NOT_ON_INVOICE = "That payment is not on {invoice}: choose one of its payments."
PAYMENT_FULLY_REFUNDED = "The payment of {payment} is already fully refunded: choose another."


@dataclass(frozen=True)
class CreditLineInput:
    """One line to credit: the invoice line and the amount without tax (None: all that remains
    on it). Callers name lines of the invoice; any other line is refused."""

    invoice_line: InvoiceLine
    amount: Decimal | None = None


@dataclass(frozen=True)
class LinePart:
    invoice_line: InvoiceLine
    net: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.net + self.tax


@dataclass(frozen=True)
class RefundPart:
    payment: Payment
    amount: Decimal

    @property
    def is_gateway(self) -> bool:
        return self.payment.method.is_gateway


@dataclass(frozen=True)
class Breakdown:
    invoice: Invoice
    lines: tuple[LinePart, ...]
    refunds: tuple[RefundPart, ...]
    pre_payment: Decimal  # reduces the balance due
    post_payment: Decimal  # paid back to the payer

    @property
    def currency(self) -> str:
        return self.invoice.currency

    @property
    def subtotal(self) -> Decimal:
        return sum((part.net for part in self.lines), ZERO)

    @property
    def tax_amount(self) -> Decimal:
        return sum((part.tax for part in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_amount

    @property
    def balance_due_after(self) -> Decimal:
        return self.invoice.balance_due - self.pre_payment

    def frozen(self) -> dict:
        """The breakdown as it stands, kept as plain data (amounts as text): what an approver
        approves, compared with the invoice as it is later."""
        return {
            "currency": self.currency,
            "lines": [{"line": part.invoice_line.pk, "description": part.invoice_line.description,
                       "net": str(part.net), "tax": str(part.tax), "total": str(part.total)}
                      for part in self.lines],
            "net": str(self.subtotal), "tax": str(self.tax_amount), "total": str(self.total),
            "reduces_balance": str(self.pre_payment), "paid_back": str(self.post_payment),
            "refunds": [{"payment": part.payment.pk, "method": part.payment.method.name,
                         "amount": str(part.amount)} for part in self.refunds],
        }

    def payout_instructions(self) -> list[str]:
        """What staff must do by hand: 'Pay 5.250 OMR back in cash'."""
        return [payout_instruction(part.amount, self.currency, part.payment.method.name)
                for part in self.refunds if not part.is_gateway]


def payout_instruction(amount: Decimal, currency: str, method_name: str) -> str:
    how = "in cash" if method_name.lower() == "cash" else f"by {method_name.lower()}"
    return f"Pay {format_money(amount, currency)} back {how}"


def line_credit_tax(*, line: InvoiceLine, net: Decimal, currency: str) -> Decimal:
    """Cumulative rounding: the tax on everything credited so far, less the tax already credited.
    So the tax credited on a line never exceeds its tax, and equals it once fully credited."""
    return round_money((line.credited_net + net) * line.rate, currency) - line.credited_tax


def breakdown_compute(
    *,
    invoice: Invoice,
    invoice_lines: Iterable[InvoiceLine],
    payments: Iterable[Payment],
    requested: Sequence[CreditLineInput],
    payment: Payment | None = None,
) -> Breakdown:
    """Plan a credit note from `requested`. Uses the current state of `invoice_lines` and
    `payments` (the lines named are only identified by them); writes nothing."""
    currency = invoice.currency
    if refusal := refund_refusal(invoice):
        raise BusinessRuleError(refusal)
    if not requested:
        raise BusinessRuleError(NO_LINES)

    by_id = {line.pk: line for line in invoice_lines}
    parts: list[LinePart] = []
    seen: set[int] = set()
    for item in requested:
        line, amount = by_id.get(item.invoice_line.pk), item.amount
        if line is None:
            raise BusinessRuleError(LINE_NOT_ON_INVOICE.format(invoice=invoice))
        if line.pk in seen:
            raise BusinessRuleError(LINE_TWICE.format(line=line))
        seen.add(line.pk)
        remaining = line.creditable_net
        if amount is None:
            if remaining <= 0:
                raise BusinessRuleError(LINE_NOTHING_LEFT.format(line=line))
            amount = remaining
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise BusinessRuleError(LINE_AMOUNT_NOT_POSITIVE.format(line=line))
        if not has_currency_places(amount, currency):
            raise BusinessRuleError(LINE_AMOUNT_PLACES.format(
                currency=currency, places=minor_units(currency), amount=amount, line=line))
        if remaining <= 0:
            raise BusinessRuleError(LINE_NOTHING_LEFT.format(line=line))
        if amount > remaining:
            raise BusinessRuleError(LINE_OVER.format(
                remaining=format_money(remaining, currency),
                amount=format_money(amount, currency), line=line))
        parts.append(LinePart(invoice_line=line, net=amount,
                              tax=line_credit_tax(line=line, net=amount, currency=currency)))

    total = sum((part.total for part in parts), ZERO)
    creditable = invoice.total - invoice.amount_credited
    if total > creditable:
        raise BusinessRuleError(INVOICE_OVER.format(
            amount=format_money(total, currency), remaining=format_money(creditable, currency),
            invoice=invoice))
    pre_payment = min(total, invoice.balance_due)
    post_payment = total - pre_payment
    if post_payment > invoice.net_paid:
        raise BusinessRuleError(REFUND_OVER_PAID.format(
            refundable=format_money(invoice.net_paid, currency),
            amount=format_money(post_payment, currency), invoice=invoice))

    refunds = _allocate(invoice=invoice, payments=list(payments), payment=payment,
                        amount=post_payment)
    return Breakdown(invoice=invoice, lines=tuple(parts), refunds=tuple(refunds),
                     pre_payment=pre_payment, post_payment=post_payment)


def _allocate(*, invoice: Invoice, payments: list[Payment], payment: Payment | None,
              amount: Decimal) -> list[RefundPart]:
    """The chosen payment first, then the others latest first, never beyond what each has left."""
    if payment is not None:
        chosen = next((p for p in payments if p.pk == payment.pk), None)
        if chosen is None:
            raise BusinessRuleError(PAYMENT_NOT_ON_INVOICE.format(invoice=invoice))
        if chosen.refundable <= 0 and amount > 0:
            raise BusinessRuleError(PAYMENT_FULLY_REFUNDED.format(
                payment=format_money(chosen.amount, invoice.currency)))
    else:
        chosen = None
    latest_first = sorted(payments, key=lambda p: (p.received_at, p.pk), reverse=True)
    order = ([chosen] if chosen else []) + [p for p in latest_first if p is not chosen]
    parts: list[RefundPart] = []
    left = amount
    for candidate in order:
        if left <= 0:
            break
        take = min(left, candidate.refundable)
        if take > 0:
            parts.append(RefundPart(payment=candidate, amount=take))
            left -= take
    if left > 0:  # the caps above make this unreachable; refuse rather than refund short
        raise BusinessRuleError(REFUND_OVER_PAID.format(
            refundable=format_money(amount - left, invoice.currency),
            amount=format_money(amount, invoice.currency), invoice=invoice))
    return parts
