"""Test settings: fast hashing, in-memory mail; the database comes from DATABASE_URL like everywhere."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
AXES_ENABLED = True
NOTIFICATIONS_RELAY_THREAD = False
