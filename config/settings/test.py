"""Test settings: fast hashing, in-memory mail; the database comes from DATABASE_URL like everywhere."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
AXES_ENABLED = True
NOTIFICATIONS_RELAY_THREAD = False
# Audit events are sealed inline: inside the transaction that records them, right after the queue INSERT,
# by the sequencer's own code (audit/sequencer.py), so a test reads what it recorded at once. The tests of
# the asynchronous path (tests/audit/test_sequencer.py) turn it off and run the sequencer themselves.
AUDIT_SEAL_INLINE = True
# In-process tests hold their data in one transaction that other threads' connections cannot see: the
# outbox's side-by-side delivery (federation/delivery.py) is tested with real servers (tests/federation).
FEDERATION_DELIVERY_CONCURRENCY = 1
# One message per request, as the simulated peers of the tests answer; batches are tested on their own.
FEDERATION_BATCH_SIZE = 1
AUDIT_SEQUENCER_THREAD = False
# Between transactional tests pytest-django runs `flush`: on SQLite the test suite's own (tests/flush_support)
# lifts the audit table's append-only triggers meanwhile. The product's `manage.py flush` is Django's own.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.flush_support"]  # noqa: F405
