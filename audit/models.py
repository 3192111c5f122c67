from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from billing.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


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
    action = models.CharField(max_length=64, db_index=True)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, null=True, blank=True
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
