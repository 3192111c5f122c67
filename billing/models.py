import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition

from .choices import OPEN_FOR_PAYMENT, InvoiceStatus
from .money import (
    CURRENCY_CHOICES,
    MONEY_DECIMAL_PLACES,
    MONEY_MAX_DIGITS,
    ZERO,
    format_money,
    has_currency_places,
)
from .rules import cancellation_refusal, issue_refusal


def MoneyField(verbose_name=None, **kwargs):
    kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
    kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
    return models.DecimalField(verbose_name, **kwargs)


# Constraints that add amounts compare within half of the smallest stored unit (0.001). Stored
# amounts are whole multiples of 0.001, so on PostgreSQL (exact numeric) this is the exact rule;
# on SQLite, which does decimal arithmetic in binary floating point, it avoids false alarms.
HALF_UNIT = Decimal("0.0005")


def sums_to(field: str, *parts: str) -> Q:
    """`field` equals the sum of `parts` (see HALF_UNIT)."""
    total = sum((F(p) for p in parts[1:]), F(parts[0]))
    return Q(**{f"{field}__gte": total - HALF_UNIT, f"{field}__lte": total + HALF_UNIT})


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a time zone name such as Asia/Muscat.")


class Policy(models.TextChoices):
    """A clinic's policy for a kind of action, in one word (as the API reports it): whether any
    such action can need approval under its approval rules."""

    DIRECT = "direct", "Direct"
    APPROVAL = "approval", "Approval required"


class Clinic(models.Model):
    """The billing entity: its currency and time zone. Which refunds, credits and
    cancellations need approval is said by its approval rules (approvals.ApprovalRule)."""

    code = models.CharField(
        max_length=20,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9_-]+$", "Use capital letters, digits, - or _.")],
    )
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    address = models.TextField(blank=True)
    tax_registration_number = models.CharField(max_length=50, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="clinics", blank=True,
        help_text="Staff who may see and work on this clinic's invoices.",
    )
    # Financial Approval housekeeping (approvals/housekeeping.py, run by the periodic jobs)
    approval_expiry_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1)],
        help_text="An approved request not carried out within this many days expires.",
    )
    approval_reminder_hours = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1)],
        help_text="A request waiting longer than this reminds the clinic's approvers once; "
                  "after twice as long it goes to the billing administrators.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(approval_expiry_days__gte=1),
                                   name="clinic_approval_expiry_days_positive"),
            models.CheckConstraint(condition=Q(approval_reminder_hours__gte=1),
                                   name="clinic_approval_reminder_hours_positive"),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"


class Account(models.Model):
    """The patient or payer an invoice is addressed to."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="accounts")
    number = models.CharField(max_length=30, help_text="Patient or account number.")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        # The patient list walks the accounts in name order (docs/performance.md).
        indexes = [models.Index(fields=["name", "id"], name="account_name_idx")]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "number"], name="account_number_unique")
        ]

    def __str__(self):
        return f"{self.name} ({self.number})"


class TaxRate(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="tax_rates")
    name = models.CharField(max_length=60)
    percentage = models.DecimalField(
        max_digits=7, decimal_places=4, help_text="5 means 5%."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["clinic", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="tax_rate_name_unique"),
            models.CheckConstraint(
                condition=Q(percentage__gte=0, percentage__lte=100),
                name="tax_rate_percentage_range",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.percentage.normalize():f}%)"

    @property
    def rate(self) -> Decimal:
        return self.percentage / Decimal(100)


class Service(models.Model):
    """A catalogue item: what the clinic bills for, its price and default tax rate."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="services")
    code = models.CharField(max_length=30)
    name = models.CharField(max_length=200)
    unit_price = MoneyField(validators=[MinValueValidator(ZERO)])
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, related_name="services")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["clinic", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "code"], name="service_code_unique"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="service_price_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"

    def clean(self):
        if (
            self.clinic_id and self.unit_price is not None
            and not has_currency_places(self.unit_price, self.clinic.currency)
        ):
            raise ValidationError({"unit_price": "The price has more decimals than the currency."})
        if self.clinic_id and self.tax_rate_id and self.tax_rate.clinic_id != self.clinic_id:
            raise ValidationError({"tax_rate": "Choose a tax rate of the same clinic."})


class PaymentMethodKind(models.TextChoices):
    MANUAL = "manual", "Manual (cash, card terminal, transfer…)"
    GATEWAY = "gateway", "Payment gateway"


class PaymentMethod(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="payment_methods")
    name = models.CharField(max_length=60)
    kind = models.CharField(
        max_length=10, choices=PaymentMethodKind, default=PaymentMethodKind.MANUAL
    )
    gateway = models.CharField(
        max_length=30, blank=True,
        help_text="Gateway adapter code (e.g. sandbox); only for gateway methods.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["clinic", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="payment_method_name_unique"),
            models.CheckConstraint(
                condition=(Q(kind=PaymentMethodKind.MANUAL, gateway="")
                           | (Q(kind=PaymentMethodKind.GATEWAY) & ~Q(gateway=""))),
                name="payment_method_gateway_matches_kind",
                violation_error_message="Gateway methods need an adapter code, manual ones none.",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_gateway(self) -> bool:
        return self.kind == PaymentMethodKind.GATEWAY


# The reason every cancellation credit note carries, and no refund or credit may.
CANCELLATION_REASON = "Invoice cancelled"


class DisputeReason(models.Model):
    """Why a credit note was issued; every credit note carries one."""

    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class NumberSeries(models.Model):
    """Gapless document numbers per clinic: the row is locked and advanced in the document's
    own transaction, so a rolled-back document gives its number back."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="number_series")
    kind = models.CharField(max_length=20, choices=Kind)
    prefix = models.CharField(max_length=20, help_text="Printed before the number, e.g. INV-MCT-")
    padding = models.PositiveSmallIntegerField(default=6)
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "number series"
        constraints = [
            models.UniqueConstraint(fields=["clinic", "kind"], name="number_series_unique")
        ]

    def __str__(self):
        return f"{self.clinic.code} {self.get_kind_display()} ({self.prefix}…)"


class Invoice(FSMModelMixin, models.Model):
    """What an account owes a clinic. Totals are sums of its lines; paid, refunded and credited are
    running totals kept by the services under a row lock and bounded by database constraints."""

    Status = InvoiceStatus

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="invoices")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    # NULL (not "") until issued, so the per-clinic unique constraint ignores drafts.
    number = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001
    sequence = models.PositiveIntegerField(null=True, blank=True, editable=False)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    status = FSMField(
        max_length=20, choices=InvoiceStatus, default=InvoiceStatus.DRAFT, protected=True
    )
    subtotal = MoneyField(default=ZERO, editable=False)
    tax_amount = MoneyField(default=ZERO, editable=False)
    total = MoneyField(default=ZERO, editable=False)
    amount_paid = MoneyField(default=ZERO, editable=False)
    amount_refunded = MoneyField(default=ZERO, editable=False)
    amount_credited = MoneyField(default=ZERO, editable=False)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("issue_invoice", "Can issue invoices"),
            ("record_payment", "Can record payments"),
            ("refund_invoice", "Can refund invoices"),
            ("credit_invoice", "Can credit invoice lines"),
            ("cancel_invoice", "Can cancel invoices"),
        ]
        # Each list's filter and order has its index (see docs/performance.md); the searched
        # columns also have trigram indexes on PostgreSQL (migration 0004).
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="invoice_newest_idx"),
            models.Index(fields=["clinic", "-created_at", "-id"],
                         name="invoice_clinic_newest_idx"),
            models.Index(fields=["status", "-created_at", "-id"],
                         name="invoice_status_newest_idx"),
            models.Index(fields=["clinic", "status", "issue_date"],
                         name="invoice_clinic_status_date_idx"),
            models.Index(fields=["issue_date", "id"], condition=Q(status__in=OPEN_FOR_PAYMENT),
                         name="invoice_open_by_date_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "number"], condition=Q(number__isnull=False),
                name="invoice_number_unique_per_clinic",
            ),
            models.UniqueConstraint(
                fields=["clinic", "sequence"], condition=Q(sequence__isnull=False),
                name="invoice_sequence_unique_per_clinic",
            ),
            models.CheckConstraint(
                condition=Q(status=InvoiceStatus.DRAFT) | Q(number__isnull=False),
                name="invoice_issued_has_number",
            ),
            models.CheckConstraint(
                condition=sums_to("total", "subtotal", "tax_amount"), name="invoice_total_sums"
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0, amount_refunded__gte=0, amount_credited__gte=0),
                name="invoice_running_totals_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=F("amount_paid")),
                name="invoice_refunds_within_payments",
            ),
            models.CheckConstraint(
                condition=Q(amount_credited__lte=F("total")),
                name="invoice_credits_within_total",
            ),
            # balance due = total − credited − (paid − refunded) is never negative
            models.CheckConstraint(
                condition=Q(total__gte=F("amount_credited") + F("amount_paid")
                            - F("amount_refunded") - HALF_UNIT),
                name="invoice_balance_due_not_negative",
            ),
        ]

    def __str__(self):
        return f"Invoice {self.number}" if self.number else f"Draft invoice #{self.pk}"

    # -- derived amounts ------------------------------------------------------------------------

    @property
    def net_paid(self) -> Decimal:
        return self.amount_paid - self.amount_refunded

    @property
    def total_after_credits(self) -> Decimal:
        """What the invoice is worth once its credit notes (refunds' included) are taken off."""
        return self.total - self.amount_credited

    @property
    def balance_due(self) -> Decimal:
        return self.total_after_credits - self.net_paid

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self.currency)

    # -- transitions: guards and the new state only; services lock, save and audit ---------------

    @transition(field=status, source=InvoiceStatus.DRAFT, target=InvoiceStatus.ISSUED,
                conditions=[lambda inv: issue_refusal(inv) is None],
                custom={"label": "Issue"})
    def issue(self):
        pass

    @transition(field=status, source=[InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID],
                target=RETURN_VALUE(InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID),
                custom={"admin": False})
    def settle(self):
        """After a payment: fully paid once nothing is left to pay."""
        return InvoiceStatus.PAID if self.balance_due == 0 else InvoiceStatus.PARTIALLY_PAID

    @transition(field=status,
                source=[InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID,
                        InvoiceStatus.PARTIALLY_REFUNDED],
                target=RETURN_VALUE(InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID,
                                    InvoiceStatus.PAID, InvoiceStatus.PARTIALLY_REFUNDED,
                                    InvoiceStatus.REFUNDED, InvoiceStatus.CREDITED),
                custom={"admin": False})
    def apply_credit(self):
        """After a credit note: where its credits and refunds leave the invoice."""
        if self.amount_refunded > 0:
            if self.amount_credited == self.total:
                return InvoiceStatus.REFUNDED
            return InvoiceStatus.PARTIALLY_REFUNDED
        if self.balance_due == 0:
            return InvoiceStatus.PAID if self.amount_paid > 0 else InvoiceStatus.CREDITED
        return InvoiceStatus.PARTIALLY_PAID if self.amount_paid > 0 else InvoiceStatus.ISSUED

    @transition(field=status, source=InvoiceStatus.ISSUED, target=InvoiceStatus.CANCELLED,
                conditions=[lambda inv: cancellation_refusal(inv) is None],
                custom={"admin": False})
    def cancel(self):
        pass


class InvoiceLine(models.Model):
    """One billed item. Its tax rate is a snapshot, so later rate changes never alter it.
    credited_net/credited_tax are running totals of credit notes on the line."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=10, decimal_places=3)
    unit_price = MoneyField()
    tax_rate = models.ForeignKey(
        TaxRate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tax_name = models.CharField(max_length=60)
    tax_percentage = models.DecimalField(max_digits=7, decimal_places=4)
    net = MoneyField()
    tax = MoneyField()
    total = MoneyField()
    credited_net = MoneyField(default=ZERO, editable=False)
    credited_tax = MoneyField(default=ZERO, editable=False)

    class Meta:
        ordering = ["invoice", "position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="line_price_not_negative"),
            models.CheckConstraint(
                condition=Q(net__gte=0, tax__gte=0, tax_percentage__gte=0),
                name="line_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=sums_to("total", "net", "tax"), name="line_total_sums"
            ),
            models.CheckConstraint(
                condition=Q(credited_net__gte=0, credited_net__lte=F("net")),
                name="line_credited_net_within_net",
            ),
            models.CheckConstraint(
                condition=Q(credited_tax__gte=0, credited_tax__lte=F("tax")),
                name="line_credited_tax_within_tax",
            ),
        ]

    def __str__(self):
        return self.description

    @property
    def rate(self) -> Decimal:
        return self.tax_percentage / Decimal(100)

    @property
    def credited_total(self) -> Decimal:
        return self.credited_net + self.credited_tax

    @property
    def creditable_net(self) -> Decimal:
        return self.net - self.credited_net


class Payment(models.Model):
    """Money received against an invoice; amount_refunded is the running total of its refunds."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="payments")
    amount = MoneyField()
    amount_refunded = MoneyField(default=ZERO, editable=False)
    reference = models.CharField(
        max_length=100, blank=True,
        help_text="Receipt or cheque number; for gateway payments the gateway's charge id.",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "received_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount")),
                name="payment_refunds_within_amount",
            ),
        ]

    def __str__(self):
        return f"{format_money(self.amount, self.invoice.currency)} by {self.method}"

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.amount_refunded
