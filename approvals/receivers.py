"""What approvals does when billing reports a change (billing/signals.py)."""

from django.dispatch import receiver

from billing.signals import payment_recorded

from .services import requests_refresh_staleness


@receiver(payment_recorded, dispatch_uid="approvals.payment_changes_breakdowns")
def payment_changes_breakdowns(sender, *, invoice, actor, **kwargs):
    """A payment moves what a credit note would pay back: open requests may go stale."""
    requests_refresh_staleness(invoice=invoice, actor=actor, cause="a payment was recorded")
