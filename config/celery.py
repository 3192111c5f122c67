"""The Celery app: gateway refunds, notification emails and the periodic jobs (README: running
it; docs/deploy.md). Settings come from Django's, prefixed CELERY_; without CELERY_BROKER_URL
every task runs eagerly, in the process that queues it."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("clinic_billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
