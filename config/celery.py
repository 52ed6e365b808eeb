"""The Celery app. With REDIS_URL: a real worker and beat; without, the web process relays the outbox."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("referrals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
