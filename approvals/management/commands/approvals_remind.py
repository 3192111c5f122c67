from django.core.management.base import BaseCommand

from approvals.housekeeping import requests_remind
from audit.context import audit_context


class Command(BaseCommand):
    help = (
        "Remind the approvers of every request waiting longer than its clinic's reminder hours, "
        "and escalate those waiting twice as long to the billing administrators; each only "
        "once. Celery beat runs the same every 5 minutes; safe to run at any time."
    )

    def handle(self, *args, **options):
        with audit_context(client="command:approvals_remind"):
            reminded, escalated = requests_remind()
        noun = "request" if reminded == 1 else "requests"
        self.stdout.write(f"Reminded approvers of {reminded} {noun}; escalated {escalated} to "
                          "billing administrators.")
