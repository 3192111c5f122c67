from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

# As wide as every money column of the ledger (tests/test_audit.py checks they agree); the audit
# log sits below every other app and imports none of them.
AMOUNT_MAX_DIGITS = 14
AMOUNT_DECIMAL_PLACES = 3


class Action(models.TextChoices):
    """Every kind of event the ledger records: `<what>.<what happened to it>`."""

    ACCOUNT_CREATED = "account.created", "Patient account created"
    INVOICE_CREATED = "invoice.created", "Invoice created"
    INVOICE_ISSUED = "invoice.issued", "Invoice issued"
    INVOICE_DISCARDED = "invoice.discarded", "Draft discarded"
    INVOICE_CANCELLED = "invoice.cancelled", "Invoice cancelled"
    PAYMENT_RECORDED = "payment.recorded", "Payment recorded"
    CREDIT_NOTE_ISSUED = "credit_note.issued", "Credit note issued"
    REFUND_CREATED = "refund.created", "Refund created"
    REFUND_SUCCEEDED = "refund.succeeded", "Gateway refund succeeded"
    REFUND_FAILED = "refund.failed", "Gateway refund failed"
    REFUND_RETRIED = "refund.retried", "Gateway refund retried"
    REFUND_PAID_OUT = "refund.paid_out", "Refund paid out"
    REQUEST_SUBMITTED = "request.submitted", "Request submitted"
    REQUEST_APPROVED = "request.approved", "Request approved"
    REQUEST_REJECTED = "request.rejected", "Request rejected"
    REQUEST_WITHDRAWN = "request.withdrawn", "Request withdrawn"
    REQUEST_COMPLETED = "request.completed", "Request carried out"
    REQUEST_EXPIRED = "request.expired", "Approved request expired"
    REQUEST_REMINDED = "request.reminded", "Approvers reminded of a waiting request"
    REQUEST_ESCALATED = "request.escalated", "Waiting request escalated to administrators"
    REQUEST_STALE = "request.stale", "Request's breakdown changed: approvals needed again"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be changed.")

    def delete(self):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditEvent(models.Model):
    """One state change or money movement. Append-only: the database refuses UPDATE and DELETE."""

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="audit_events",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    clinic = models.ForeignKey(
        "billing.Clinic", null=True, blank=True, on_delete=models.PROTECT,
        related_name="audit_events",
    )
    # The invoice the event belongs to, so an invoice page can show the history of its payments,
    # credit notes and requests too. No database constraint: a discarded draft keeps its history.
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.DO_NOTHING,
        db_constraint=False, related_name="audit_events",
    )
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True, choices=Action.choices)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    amount = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, null=True, blank=True
    )
    currency = models.CharField(max_length=3, blank=True)
    remarks = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    client = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        db_table = "audit_event"
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit events are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")

    @property
    def transition(self) -> str:
        if self.from_state or self.to_state:
            return f"{self.from_state or '—'} → {self.to_state or '—'}"
        return ""
