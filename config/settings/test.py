"""Test settings: fast hashing, in-memory mail; the database comes from DATABASE_URL like everywhere."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
AXES_ENABLED = True
NOTIFICATIONS_RELAY_THREAD = False
# Between transactional tests pytest-django runs `flush`: on SQLite the test suite's own (tests/flush_support)
# lifts the audit table's append-only triggers meanwhile. The product's `manage.py flush` is Django's own.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.flush_support"]  # noqa: F405
