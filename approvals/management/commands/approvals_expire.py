from django.core.management.base import BaseCommand

from approvals.housekeeping import requests_expire
from audit.context import audit_context


class Command(BaseCommand):
    help = (
        "Expire every approved request not carried out within its clinic's approval expiry "
        "days, freeing its invoice for a new request. Celery beat runs the same every 5 "
        "minutes; safe to run at any time."
    )

    def handle(self, *args, **options):
        with audit_context(client="command:approvals_expire"):
            expired = requests_expire()
        noun = "request" if expired == 1 else "requests"
        self.stdout.write(f"{expired} approved {noun} expired.")
