"""Writes on the ledger. Each service locks the invoice row, checks every rule with a plain
message, moves the state machine, saves and writes its audit event in one transaction."""

import datetime
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import audit_event_record

from .access import ensure_can
from .exceptions import BusinessRuleError
from .models import (
    Account,
    Clinic,
    Invoice,
    InvoiceLine,
    NumberSeries,
    Payment,
    PaymentMethod,
    Service,
    TaxRate,
)
from .money import (
    MONEY_LIMIT,
    QUANTITY_LIMIT,
    ZERO,
    format_money,
    has_currency_places,
    line_amounts,
    minor_units,
)
from .numbering import number_take
from .rules import ALREADY_ISSUED as ALREADY_ISSUED
from .rules import ISSUE_ZERO_TOTAL as ISSUE_ZERO_TOTAL
from .rules import discard_refusal, issue_refusal, payment_refusal
from .signals import payment_recorded

ACCOUNT_OF_OTHER_CLINIC = "That patient account belongs to another clinic."
ACCOUNT_INACTIVE = "The account {account} is closed; reopen it before billing it."
NO_LINES = "Add at least one line to the invoice."
LINE_NO_DESCRIPTION = "Line {n}: enter a description."
LINE_QUANTITY = (
    "Line {n}: the quantity must be greater than zero and below 10,000,000, with at most "
    "3 decimals."
)
LINE_PRICE_NEGATIVE = "Line {n}: enter a unit price of zero or more."
LINE_TOO_LARGE = "Line {n}: the amount is too large to bill; split it or check the figures."
INVOICE_TOO_LARGE = "The invoice total is too large to bill; split it into several invoices."
LINE_DESCRIPTION_TOO_LONG = "Line {n}: keep the description under 300 characters."
REFERENCE_TOO_LONG = "Keep the reference under 100 characters."
LINE_PRICE_PLACES = "Line {n}: {currency} prices have at most {places} decimals."
LINE_TAX_RATE = "Line {n}: choose a tax rate of this clinic."
LINE_SERVICE = "Line {n}: choose a service of this clinic."
# invoice_issue's refusals, ALREADY_ISSUED and ISSUE_ZERO_TOTAL, are stated in rules.py beside
# issue_refusal, the predicate the invoice page asks too; they are imported above under their names.
AMOUNT_NOT_POSITIVE = "Enter an amount greater than zero."
AMOUNT_PLACES = "{currency} amounts have at most {places} decimals; {amount} has more."
METHOD_OF_OTHER_CLINIC = "Choose a payment method of this clinic."
METHOD_INACTIVE = "The payment method {method} is no longer in use; choose another."
OVERPAYMENT = (
    "A payment of {amount} is more than the balance due of {balance}. "
    "Record at most the balance due."
)


ACCOUNT_NAME_REQUIRED = "Enter the account holder's name."
ACCOUNT_NUMBER_REQUIRED = "Enter the patient or account number."
ACCOUNT_NUMBER_TAKEN = "{clinic} already has an account numbered {number}."
ACCOUNT_NAME_TOO_LONG = "Keep the name under 200 characters."
ACCOUNT_NUMBER_TOO_LONG = "Account numbers have at most 30 characters."
ACCOUNT_EMAIL_INVALID = "Enter a valid email address, or leave it empty."
ACCOUNT_PHONE_TOO_LONG = "Keep the phone number under 40 characters."


def account_create(*, clinic: Clinic, name: str, number: str, actor, email: str = "",
                   phone: str = "") -> Account:
    """A patient or payer account of the clinic; numbers are unique per clinic."""
    ensure_can(actor=actor, clinic=clinic, permission="billing.add_account",
               action="create accounts")
    name, number = (name or "").strip(), (number or "").strip()
    email, phone = (email or "").strip(), (phone or "").strip()
    if not name:
        raise BusinessRuleError(ACCOUNT_NAME_REQUIRED)
    if len(name) > 200:
        raise BusinessRuleError(ACCOUNT_NAME_TOO_LONG)
    if not number:
        raise BusinessRuleError(ACCOUNT_NUMBER_REQUIRED)
    if len(number) > 30:
        raise BusinessRuleError(ACCOUNT_NUMBER_TOO_LONG)
    if email:
        try:
            if len(email) > 254:
                raise ValidationError(ACCOUNT_EMAIL_INVALID)
            validate_email(email)
        except ValidationError:
            raise BusinessRuleError(ACCOUNT_EMAIL_INVALID) from None
    if len(phone) > 40:
        raise BusinessRuleError(ACCOUNT_PHONE_TOO_LONG)
    with transaction.atomic():
        if Account.objects.filter(clinic=clinic, number=number).exists():
            raise BusinessRuleError(ACCOUNT_NUMBER_TAKEN.format(clinic=clinic.name,
                                                                number=number))
        try:
            with transaction.atomic():
                account = Account.objects.create(clinic=clinic, name=name, number=number,
                                                 email=email, phone=phone)
        except IntegrityError:  # created by someone else a moment ago
            raise BusinessRuleError(ACCOUNT_NUMBER_TAKEN.format(
                clinic=clinic.name, number=number)) from None
        audit_event_record(actor=actor, clinic=clinic, obj=account, action=Action.ACCOUNT_CREATED,
                           data={"number": account.number})
    return account


@dataclass(frozen=True)
class LineInput:
    """One line to bill: a catalogue service, or a free description with price and tax rate."""

    quantity: Decimal
    description: str = ""
    unit_price: Decimal | None = None
    tax_rate: TaxRate | None = None
    service: Service | None = None


def invoice_lock(invoice: Invoice | int) -> Invoice:
    """The invoice row, locked for this transaction: the first lock every write on an invoice
    takes (then its payments, then anything else). Only the invoice row is locked, not its
    clinic, so invoices of one clinic do not queue behind each other."""
    pk = invoice.pk if isinstance(invoice, Invoice) else invoice
    return (Invoice.objects.select_for_update(of=("self",)).select_related("clinic")
            .get(pk=pk))


def _check_amount(amount: Decimal, currency: str) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise BusinessRuleError(AMOUNT_NOT_POSITIVE)
    if not has_currency_places(amount, currency):
        raise BusinessRuleError(
            AMOUNT_PLACES.format(currency=currency, places=minor_units(currency), amount=amount)
        )


def _build_line(*, n: int, spec: LineInput, clinic: Clinic) -> InvoiceLine:
    service = spec.service
    if service is not None and service.clinic_id != clinic.pk:
        raise BusinessRuleError(LINE_SERVICE.format(n=n))
    description = (spec.description or (service.name if service else "")).strip()
    unit_price = spec.unit_price if spec.unit_price is not None else (
        service.unit_price if service else None
    )
    tax_rate = spec.tax_rate or (service.tax_rate if service else None)
    quantity = spec.quantity
    if not description:
        raise BusinessRuleError(LINE_NO_DESCRIPTION.format(n=n))
    if (
        not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity <= 0
        or quantity >= QUANTITY_LIMIT or quantity != quantity.quantize(Decimal("0.001"))
    ):
        raise BusinessRuleError(LINE_QUANTITY.format(n=n))
    if not isinstance(unit_price, Decimal) or not unit_price.is_finite() or unit_price < 0:
        raise BusinessRuleError(LINE_PRICE_NEGATIVE.format(n=n))
    if len(description) > 300:
        raise BusinessRuleError(LINE_DESCRIPTION_TOO_LONG.format(n=n))
    if not has_currency_places(unit_price, clinic.currency):
        raise BusinessRuleError(LINE_PRICE_PLACES.format(
            n=n, currency=clinic.currency, places=minor_units(clinic.currency)))
    if tax_rate is None or tax_rate.clinic_id != clinic.pk:
        raise BusinessRuleError(LINE_TAX_RATE.format(n=n))
    if unit_price >= MONEY_LIMIT:
        raise BusinessRuleError(LINE_TOO_LARGE.format(n=n))
    net, tax, total = line_amounts(
        quantity=quantity, unit_price=unit_price, rate=tax_rate.rate, currency=clinic.currency
    )
    if total >= MONEY_LIMIT:
        raise BusinessRuleError(LINE_TOO_LARGE.format(n=n))
    return InvoiceLine(
        position=n, service=service, description=description, quantity=quantity,
        unit_price=unit_price, tax_rate=tax_rate, tax_name=tax_rate.name,
        tax_percentage=tax_rate.percentage, net=net, tax=tax, total=total,
    )


def invoice_create(
    *,
    clinic: Clinic,
    account: Account,
    lines: Sequence[LineInput],
    actor,
    issue: bool = False,
    notes: str = "",
    due_date: datetime.date | None = None,
) -> Invoice:
    """A draft invoice with its lines and totals (issued at once when `issue` is true)."""
    ensure_can(actor=actor, clinic=clinic, permission="billing.add_invoice",
               action="create invoices")
    if account.clinic_id != clinic.pk:
        raise BusinessRuleError(ACCOUNT_OF_OTHER_CLINIC)
    if not account.is_active:
        raise BusinessRuleError(ACCOUNT_INACTIVE.format(account=account))
    if not lines:
        raise BusinessRuleError(NO_LINES)
    built = [_build_line(n=n, spec=spec, clinic=clinic) for n, spec in enumerate(lines, start=1)]
    if sum((line.total for line in built), ZERO) >= MONEY_LIMIT:
        raise BusinessRuleError(INVOICE_TOO_LARGE)

    with transaction.atomic():
        subtotal = sum((line.net for line in built), ZERO)
        tax_amount = sum((line.tax for line in built), ZERO)
        invoice = Invoice.objects.create(
            clinic=clinic, account=account, currency=clinic.currency, notes=notes.strip(),
            due_date=due_date, subtotal=subtotal, tax_amount=tax_amount,
            total=subtotal + tax_amount, created_by=actor,
        )
        for line in built:
            line.invoice = invoice
        InvoiceLine.objects.bulk_create(built)
        audit_event_record(
            actor=actor, clinic=clinic, invoice=invoice, obj=invoice, action=Action.INVOICE_CREATED,
            to_state=invoice.status, amount=invoice.total,
        )
        if issue:
            invoice = invoice_issue(invoice=invoice, actor=actor)
    return invoice


def invoice_issue(
    *, invoice: Invoice, actor, issue_date: datetime.date | None = None
) -> Invoice:
    """Give a draft its gapless number and make it payable."""
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        ensure_can(actor=actor, clinic=invoice.clinic, permission="billing.issue_invoice",
                   action="issue invoices")
        if refusal := issue_refusal(invoice):
            raise BusinessRuleError(refusal)
        from_state = invoice.status
        invoice.sequence, invoice.number = number_take(
            clinic=invoice.clinic, kind=NumberSeries.Kind.INVOICE
        )
        invoice.issue_date = issue_date or timezone.now().astimezone(
            zoneinfo.ZoneInfo(invoice.clinic.timezone)
        ).date()
        invoice.issue()
        invoice.save()
        audit_event_record(
            actor=actor, clinic=invoice.clinic, invoice=invoice, obj=invoice,
            action=Action.INVOICE_ISSUED, from_state=from_state, to_state=invoice.status,
            amount=invoice.total, data={"number": invoice.number},
        )
    return invoice


def invoice_discard(*, invoice: Invoice, actor) -> None:
    """Throw away a draft. It has no number, so nothing in the ledger refers to it; its history
    stays in the audit log."""
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        ensure_can(actor=actor, clinic=invoice.clinic, permission="billing.add_invoice",
                   action="discard draft invoices")
        if refusal := discard_refusal(invoice):
            raise BusinessRuleError(refusal)
        audit_event_record(
            actor=actor, clinic=invoice.clinic, invoice=invoice, obj=invoice,
            action=Action.INVOICE_DISCARDED, from_state=invoice.status, amount=invoice.total,
            data={"account": invoice.account.number, "lines": invoice.lines.count()},
        )
        invoice.lines.all().delete()
        invoice.delete()


def payment_record(
    *,
    invoice: Invoice,
    method: PaymentMethod,
    amount: Decimal,
    actor,
    reference: str = "",
    received_at: datetime.datetime | None = None,
) -> Payment:
    """Money received. Refused on drafts and cancelled invoices, and beyond the balance due."""
    with transaction.atomic():
        invoice = invoice_lock(invoice)
        ensure_can(actor=actor, clinic=invoice.clinic, permission="billing.record_payment",
                   action="record payments")
        if refusal := payment_refusal(invoice):
            raise BusinessRuleError(refusal)
        _check_amount(amount, invoice.currency)
        reference = (reference or "").strip()
        if len(reference) > 100:
            raise BusinessRuleError(REFERENCE_TOO_LONG)
        if method.clinic_id != invoice.clinic_id:
            raise BusinessRuleError(METHOD_OF_OTHER_CLINIC)
        if not method.is_active:
            raise BusinessRuleError(METHOD_INACTIVE.format(method=method))
        balance = invoice.balance_due
        if amount > balance:
            raise BusinessRuleError(OVERPAYMENT.format(
                amount=format_money(amount, invoice.currency),
                balance=format_money(balance, invoice.currency),
            ))

        payment = Payment.objects.create(
            invoice=invoice, method=method, amount=amount, reference=reference,
            recorded_by=actor, received_at=received_at or timezone.now(),
        )
        from_state = invoice.status
        invoice.amount_paid += amount
        invoice.settle()
        invoice.save()
        audit_event_record(
            actor=actor, clinic=invoice.clinic, invoice=invoice, obj=payment,
            action=Action.PAYMENT_RECORDED, from_state=from_state, to_state=invoice.status,
            amount=amount, data={"method": method.name, "reference": payment.reference},
        )
        payment_recorded.send(sender=Payment, invoice=invoice, actor=actor)
    return payment
