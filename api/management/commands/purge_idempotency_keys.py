from django.conf import settings
from django.core.management.base import BaseCommand

from api.idempotency import idempotency_keys_purge


class Command(BaseCommand):
    help = (
        "Forget Idempotency-Keys older than IDEMPOTENCY_KEY_TTL_HOURS (at least 24 hours). "
        "Celery beat runs the same daily."
    )

    def handle(self, *args, **options):
        deleted = idempotency_keys_purge()
        self.stdout.write(f"Forgot {deleted} idempotency key(s) older than "
                          f"{settings.IDEMPOTENCY_KEY_TTL_HOURS} hours.")
