"""Benchmark settings: the real settings, plus the plain comparison views; no throttling in the way."""

from config.settings.base import *  # noqa: F403
from config.settings.base import REST_FRAMEWORK

ROOT_URLCONF = "bench.urls"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"api_client": "1000000/min", "user": "1000000/min"},
}
NOTIFICATIONS_RELAY_THREAD = False
# Benchmarks empty their database with `flush` between runs: on SQLite the tests' own (tests/flush_support),
# which lifts the audit table's append-only triggers meanwhile; Django's own refuses to empty the audit log.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.flush_support"]  # noqa: F405
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
