from .models import AuditEvent


def audit_events_for_invoice(*, invoice) -> list[AuditEvent]:
    """An invoice's history (its own changes, payments, credit notes, requests), newest first."""
    return list(
        AuditEvent.objects.filter(invoice_id=invoice.pk)
        .select_related("actor")
        .order_by("-occurred_at", "-pk")
    )
