from django.core.management.base import BaseCommand

from approvals.notifications import notifications_muted
from audit.context import audit_context
from desk.demo import USERS, seed_demo


class Command(BaseCommand):
    help = (
        "Create the demo clinics (MUSCAT in OMR with approvals, AUSTIN in USD, direct), their "
        "staff, catalogue and invoices. Safe to run again: existing data is left as it is."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help="Set this password for every demo user (otherwise new users get a random one, "
                 "printed once, and existing users keep theirs).",
        )

    def handle(self, *args, password=None, **options):
        with audit_context(client="command:seed_demo"), notifications_muted():
            report = seed_demo(password=password)

        if report.created:
            made = ", ".join(f"{n} {what}" for what, n in report.created.items())
            self.stdout.write(self.style.SUCCESS(f"Demo data created: {made}."))
        else:
            self.stdout.write("Demo data already present; nothing changed.")

        self.stdout.write("\nDemo logins:")
        for username, (_, _, group, clinics) in USERS.items():
            role = group or "superuser"
            shown = password or report.passwords.get(username, "(unchanged)")
            self.stdout.write(f"  {username:<13} {shown:<16} {role}, {' + '.join(clinics)}")
        if not password and not report.passwords:
            self.stdout.write(
                "Passwords were printed when the users were first made. To set them all again: "
                "python manage.py seed_demo --password <new password>"
            )
