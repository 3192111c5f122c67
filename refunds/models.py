import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from billing.models import (
    Account,
    Clinic,
    DisputeReason,
    Invoice,
    InvoiceLine,
    MoneyField,
    Payment,
    sums_to,
)
from billing.money import CURRENCY_CHOICES, format_money


class CreditNoteKind(models.TextChoices):
    REFUND = "refund", "Refund"
    CREDIT = "credit", "Credit"
    CANCELLATION = "cancellation", "Cancellation"


class CreditNote(models.Model):
    """Reduces what an invoice is worth. `amount_applied` is the part that reduced the balance
    due; `amount_unapplied` the part refunded to the payer (see its refunds)."""

    Kind = CreditNoteKind

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credit_notes")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    number = models.CharField(max_length=40)
    sequence = models.PositiveIntegerField(editable=False)
    kind = models.CharField(max_length=20, choices=CreditNoteKind)
    subtotal = MoneyField()
    tax_amount = MoneyField()
    amount = MoneyField()
    amount_applied = MoneyField(help_text="Part that reduced the balance due.")
    amount_unapplied = MoneyField(help_text="Part refunded to the payer.")
    is_credit = models.BooleanField(
        default=True, help_text="True when nothing of it was paid back (a pure credit)."
    )
    is_legacy = models.BooleanField(
        default=False, help_text="Brought over from a previous billing system."
    )
    description = models.TextField(blank=True)
    dispute_reason = models.ForeignKey(
        DisputeReason, on_delete=models.PROTECT, related_name="credit_notes"
    )
    # `disputeId` in the API; the column keeps its first name.
    approval_request = models.OneToOneField(
        "approvals.FinancialRequest", null=True, blank=True, on_delete=models.PROTECT,
        related_name="credit_note", db_column="dispute_id",
        help_text="The approved request that authorised this credit note, where one was needed.",
    )
    warren_id = models.CharField(
        "external reference", max_length=100, blank=True,
        help_text="Reference of this credit note in an outside system, if any.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-issued_at", "-pk"]
        indexes = [
            models.Index(fields=["-issued_at", "-id"], name="credit_note_newest_idx"),
            models.Index(fields=["kind", "-issued_at", "-id"], name="credit_note_kind_newest_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "number"], name="credit_note_number_unique"),
            models.UniqueConstraint(
                fields=["clinic", "sequence"], name="credit_note_sequence_unique"
            ),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0, tax_amount__gte=0, amount__gt=0,
                            amount_applied__gte=0, amount_unapplied__gte=0),
                name="credit_note_amounts_valid",
            ),
            models.CheckConstraint(
                condition=sums_to("amount", "subtotal", "tax_amount"),
                name="credit_note_amount_sums",
            ),
            models.CheckConstraint(
                condition=sums_to("amount", "amount_applied", "amount_unapplied"),
                name="credit_note_split_sums",
            ),
        ]

    def __str__(self):
        return f"Credit note {self.number}"

    def money(self, amount):
        return format_money(amount, self.currency)


class CreditNoteLine(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(
        InvoiceLine, on_delete=models.PROTECT, related_name="credit_note_lines"
    )
    net = MoneyField()
    tax = MoneyField()
    total = MoneyField()

    class Meta:
        ordering = ["credit_note", "invoice_line__position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(net__gt=0, tax__gte=0), name="credit_note_line_amounts_valid"
            ),
            models.CheckConstraint(
                condition=sums_to("total", "net", "tax"), name="credit_note_line_total_sums"
            ),
            models.UniqueConstraint(
                fields=["credit_note", "invoice_line"], name="credit_note_line_once_per_line"
            ),
        ]

    def __str__(self):
        return f"{self.invoice_line.description}: {self.total}"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    AWAITING_PAYOUT = "awaiting_payout", "Awaiting payout"
    PAID_OUT = "paid_out", "Paid out"


# Refunds staff must act on: declined by the gateway, or waiting to be paid out by hand.
NEEDS_ATTENTION = [RefundStatus.FAILED, RefundStatus.AWAITING_PAYOUT]


class Refund(FSMModelMixin, models.Model):
    """Money going back to the payer against one payment. Gateway refunds start `pending` and
    are sent after commit; manual ones wait until staff mark the payout made."""

    Status = RefundStatus

    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="refunds")
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = MoneyField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    method_name = models.CharField(max_length=60)
    gateway = models.CharField(max_length=30, blank=True)
    status = FSMField(max_length=20, choices=RefundStatus, protected=True)
    gateway_reference = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Calls to the gateway.")
    retries = models.PositiveSmallIntegerField(
        default=0, help_text="Times staff sent it again after the gateway declined it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    paid_out_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["created_at", "id"], condition=Q(status__in=NEEDS_ATTENTION),
                         name="refund_needing_attention_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=(Q(gateway="", status__in=[RefundStatus.AWAITING_PAYOUT,
                                                     RefundStatus.PAID_OUT])
                           | (~Q(gateway="") & Q(status__in=[RefundStatus.PENDING,
                                                              RefundStatus.SUCCEEDED,
                                                              RefundStatus.FAILED]))),
                name="refund_status_matches_kind",
            ),
        ]

    def __str__(self):
        return f"Refund {format_money(self.amount, self.currency)} to {self.method_name}"

    @property
    def is_gateway(self) -> bool:
        return bool(self.gateway)

    @property
    def status_label(self) -> str:
        """The status as the billing office reads it: a gateway refund queued or in flight is
        "Sending…" until the gateway's answer lands."""
        if self.status == RefundStatus.PENDING and self.is_gateway:
            return "Sending…"
        return self.get_status_display()

    @property
    def needs_attention(self) -> bool:
        return self.status in NEEDS_ATTENTION

    # -- transitions: guards and the new state only ----------------------------------------------

    @transition(field=status, source=RefundStatus.PENDING, target=RefundStatus.SUCCEEDED,
                custom={"admin": False})
    def succeed(self):
        pass

    @transition(field=status, source=RefundStatus.PENDING, target=RefundStatus.FAILED,
                custom={"admin": False})
    def fail(self):
        pass

    @transition(field=status, source=RefundStatus.FAILED, target=RefundStatus.PENDING,
                custom={"label": "Retry through the gateway"})
    def retry(self):
        pass

    @transition(field=status, source=RefundStatus.AWAITING_PAYOUT, target=RefundStatus.PAID_OUT,
                custom={"label": "Mark paid out"})
    def mark_paid_out(self):
        pass


class SandboxGatewayRefund(models.Model):
    """The sandbox gateway's own books (demo and tests): every call it received per idempotency
    key, and at most one refund per key however often it is called, as a real gateway keeps its
    idempotency keys."""

    idempotency_key = models.CharField(max_length=64, unique=True)
    calls = models.PositiveIntegerField(default=0)
    refunds = models.PositiveSmallIntegerField(
        default=0, help_text="Refunds made for the key: never more than one.")
    amount = MoneyField()
    reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(refunds__lte=1),
                                              name="sandbox_one_refund_per_key")]

    def __str__(self):
        return f"Sandbox refund {self.idempotency_key} ({self.calls} calls)"
