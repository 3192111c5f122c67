from django.core.management.base import BaseCommand

from audit.context import audit_context
from refunds.services import refunds_reconcile


class Command(BaseCommand):
    help = (
        "Send again every gateway refund left pending beyond the grace period (for example "
        "after a worker was killed mid-call). Celery beat runs the same every minute; safe to "
        "run at any time: each refund keeps its idempotency key, so the gateway never refunds "
        "twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, default=None, metavar="SECONDS",
            help="Only refunds pending for at least this long (default: the grace period, "
                 "REFUND_PENDING_GRACE_SECONDS, leaving fresh ones to their task).",
        )

    def handle(self, *args, older_than, **options):
        with audit_context(client="command:reconcile_refunds"):
            counts = refunds_reconcile(older_than_seconds=older_than)
        if not counts:
            self.stdout.write("No pending refund to reconcile.")
            return
        summary = ", ".join(
            f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items())
        )
        self.stdout.write(f"Reconciled {sum(counts.values())} refund(s): {summary}.")
