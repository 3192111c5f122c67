"""Whether an invoice may be paid, discarded, refunded, credited or cancelled, each rule stated
once. A predicate returns the plain message of its refusal, or None when the action is allowed.

The services raise on them (and the invoice's state machine asks `cancellation_refusal` before
it moves to cancelled); the screens offer only what they allow, and may show the message as the
reason an action is unavailable. They read the invoice as it is: the services call them on the
locked row."""

from .choices import OPEN_FOR_PAYMENT, InvoiceStatus
from .money import format_money

PAYMENT_ON_DRAFT = "Issue the invoice before recording a payment on it."
PAYMENT_ON_CANCELLED = "{invoice} is cancelled: it accepts no payments."
NOTHING_TO_PAY = "{invoice} has nothing left to pay."
PAYMENT_NOT_ALLOWED = "{invoice} cannot take a payment while it is {status}."

DISCARD_NOT_DRAFT = "{invoice} is issued: it cannot be discarded. Cancel it instead."

ALREADY_ISSUED = "{invoice} is already issued."
ISSUE_ZERO_TOTAL = "An invoice with a total of zero cannot be issued: add a line with a price."

INVOICE_DRAFT = "A draft invoice cannot be credited or refunded: issue it, or discard it."
INVOICE_CANCELLED = "{invoice} is cancelled: it accepts no refund or credit."
NOTHING_LEFT = "{invoice} is already fully credited: nothing is left to refund or credit."
NOTHING_PAID = (
    "Nothing paid on {invoice} is left to refund. To reduce what is owed, credit its lines instead."
)

CANCEL_DRAFT = "A draft has no number and is not cancelled: discard it instead."
CANCEL_ALREADY = "{invoice} is already cancelled."
# Refunding what was paid credits the whole invoice (money goes back only once nothing is owed),
# which then ends refunded: "refund first, then cancel" would send staff round in a circle.
CANCEL_PAID = (
    "Only an invoice nothing has been paid on can be cancelled, and {amount} paid on {invoice} "
    "has not been refunded: refund it instead. A full refund credits the whole invoice."
)
CANCEL_NOTHING_LEFT = "{invoice} is already fully credited: there is nothing left to cancel."


def payment_refusal(invoice) -> str | None:
    """Money can be received on an issued invoice until nothing is left to pay."""
    if invoice.status == InvoiceStatus.DRAFT:
        return PAYMENT_ON_DRAFT
    if invoice.status == InvoiceStatus.CANCELLED:
        return PAYMENT_ON_CANCELLED.format(invoice=invoice)
    if invoice.balance_due <= 0:
        return NOTHING_TO_PAY.format(invoice=invoice)
    if invoice.status not in OPEN_FOR_PAYMENT:  # a balance due outside these: a damaged row
        return PAYMENT_NOT_ALLOWED.format(invoice=invoice,
                                          status=invoice.get_status_display().lower())
    return None


def discard_refusal(invoice) -> str | None:
    """Only a draft can be thrown away: nothing in the ledger refers to it yet."""
    if invoice.status != InvoiceStatus.DRAFT:
        return DISCARD_NOT_DRAFT.format(invoice=invoice)
    return None


def issue_refusal(invoice) -> str | None:
    """A draft is given its number once it bills something: a total above zero."""
    if invoice.status != InvoiceStatus.DRAFT:
        return ALREADY_ISSUED.format(invoice=invoice)
    if invoice.total <= 0:
        return ISSUE_ZERO_TOTAL
    return None


def refund_refusal(invoice, *, full: bool = False) -> str | None:
    """Lines of an issued invoice can be credited (and whatever goes beyond the balance due
    refunded) until everything is credited. `full`: the full refund, which also needs money
    paid and not yet refunded."""
    if invoice.status == InvoiceStatus.DRAFT:
        return INVOICE_DRAFT
    if invoice.status == InvoiceStatus.CANCELLED:
        return INVOICE_CANCELLED.format(invoice=invoice)
    if invoice.amount_credited >= invoice.total:
        return NOTHING_LEFT.format(invoice=invoice)
    if full and invoice.net_paid <= 0:
        return NOTHING_PAID.format(invoice=invoice)
    return None


def cancellation_refusal(invoice) -> str | None:
    """An issued invoice can be cancelled while something is owed and nothing paid on it is
    left unrefunded: a cancellation credits the balance, it never pays money back."""
    if invoice.status == InvoiceStatus.DRAFT:
        return CANCEL_DRAFT
    if invoice.status == InvoiceStatus.CANCELLED:
        return CANCEL_ALREADY.format(invoice=invoice)
    if invoice.net_paid > 0:
        return CANCEL_PAID.format(amount=format_money(invoice.net_paid, invoice.currency),
                                  invoice=invoice)
    if invoice.status != InvoiceStatus.ISSUED or invoice.balance_due <= 0:
        return CANCEL_NOTHING_LEFT.format(invoice=invoice)
    return None
