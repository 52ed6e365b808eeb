"""Settings for the Celery worker the integration tests start: the development settings, plus
e-mails written to files the test can read, and fast retries / broker redelivery."""

import os

from config.settings.base import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["TEST_EMAIL_DIR"]
NOTIFICATIONS_RETRY_BASE_SECONDS = 0.5
NOTIFICATIONS_RETRY_MAX_SECONDS = 2
NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 5}  # noqa: F405
