from django.core.management.base import BaseCommand

from audit.context import audit_context
from refunds.services import refunds_reconcile


class Command(BaseCommand):
    help = (
        "Send again every gateway refund left pending (for example after a crash between saving "
        "the refund and calling the gateway). Safe to run at any time, e.g. from cron: each "
        "refund keeps its idempotency key, so the gateway never refunds twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, default=60, metavar="SECONDS",
            help="Only refunds pending for at least this long (default 60, leaving fresh ones "
                 "to the request that made them).",
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
