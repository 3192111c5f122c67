import datetime

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from api.models import IdempotencyKey


class Command(BaseCommand):
    help = "Forget Idempotency-Keys older than IDEMPOTENCY_KEY_TTL_HOURS (at least 24 hours)."

    def handle(self, *args, **options):
        cutoff = timezone.now() - datetime.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
        deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Forgot {deleted} idempotency key(s) older than "
                          f"{settings.IDEMPOTENCY_KEY_TTL_HOURS} hours.")
