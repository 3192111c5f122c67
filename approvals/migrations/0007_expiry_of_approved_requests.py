"""Requests approved before expiry existed get the default expiry (14 days after their approval),
so the expiry job treats them like any other; going back leaves the column to be dropped."""

import datetime

from django.db import migrations
from django.db.models import F

DEFAULT_EXPIRY_DAYS = 14


def set_expiry(apps, schema_editor):
    FinancialRequest = apps.get_model("approvals", "FinancialRequest")
    FinancialRequest.objects.filter(
        status="approved", expires_at__isnull=True, decided_at__isnull=False,
    ).update(expires_at=F("decided_at") + datetime.timedelta(days=DEFAULT_EXPIRY_DAYS))


class Migration(migrations.Migration):

    dependencies = [
        ("approvals", "0006_request_expiry_and_reminders"),
    ]

    operations = [
        migrations.RunPython(set_expiry, migrations.RunPython.noop),
    ]
