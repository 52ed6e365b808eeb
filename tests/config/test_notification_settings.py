"""Notification and e-mail settings come from the environment (with the documented defaults), and the
notifications code reads them from the settings rather than from constants of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int

ROOT = Path(__file__).resolve().parents[2]

DEFAULTS = {
    "NOTIFICATIONS_RETRY_BASE_SECONDS": 30.0,
    "NOTIFICATIONS_RETRY_MAX_SECONDS": 3600.0,
    "NOTIFICATIONS_MAX_ATTEMPTS": 8,
    "WEBHOOK_DISABLE_AFTER_FAILURES": 15,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    "NOTIFICATIONS_RELAY_INTERVAL": 3.0,
    "EMAIL_USE_TLS": False,
    "EMAIL_HOST_USER": "",
    "EMAIL_HOST_PASSWORD": "",
}

_PRINT = (
    "import json, django; from django.conf import settings; django.setup(); "
    f"print(json.dumps({{n: getattr(settings, n) for n in {sorted(DEFAULTS)!r}}}))"
)


def _settings_with(**env) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if k not in DEFAULTS and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    base.update(env, DJANGO_SETTINGS_MODULE="config.settings.base")
    return subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def test_the_defaults():
    result = _settings_with()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == DEFAULTS


def test_every_value_is_read_from_the_environment():
    env = {
        "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.5",
        "NOTIFICATIONS_RETRY_MAX_SECONDS": "120",
        "NOTIFICATIONS_MAX_ATTEMPTS": "3",
        "WEBHOOK_DISABLE_AFTER_FAILURES": "4",
        "WEBHOOK_TIMEOUT_SECONDS": "2.5",
        "NOTIFICATIONS_RELAY_INTERVAL": "1",
        "EMAIL_USE_TLS": "true",
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "s3cret-for-test",
    }
    result = _settings_with(**env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "NOTIFICATIONS_RETRY_BASE_SECONDS": 0.5,
        "NOTIFICATIONS_RETRY_MAX_SECONDS": 120.0,
        "NOTIFICATIONS_MAX_ATTEMPTS": 3,
        "WEBHOOK_DISABLE_AFTER_FAILURES": 4,
        "WEBHOOK_TIMEOUT_SECONDS": 2.5,
        "NOTIFICATIONS_RELAY_INTERVAL": 1.0,
        "EMAIL_USE_TLS": True,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "s3cret-for-test",
    }


def test_a_malformed_value_stops_start_up_naming_the_variable():
    result = _settings_with(NOTIFICATIONS_MAX_ATTEMPTS="eight")
    assert result.returncode != 0
    assert "NOTIFICATIONS_MAX_ATTEMPTS must be an integer" in result.stderr


@pytest.mark.parametrize(
    "helper,raw,message",
    [
        (env_int, "0", "at least 1"),
        (env_int, "1.5", "an integer"),
        (env_float, "abc", "a number"),
        (env_float, "nan", "finite"),
        (env_float, "inf", "finite"),
        (env_float, "0", "at least 0.1"),
    ],
)
def test_the_numeric_helpers_refuse_bad_values(helper, raw, message, monkeypatch):
    monkeypatch.setenv("RCM_TEST_NUMBER", raw)
    minimum = 1 if helper is env_int else 0.1
    with pytest.raises(ImproperlyConfigured, match=message):
        helper("RCM_TEST_NUMBER", 5, minimum=minimum)


def test_the_numeric_helpers_default_when_unset_or_empty(monkeypatch):
    monkeypatch.delenv("RCM_TEST_NUMBER", raising=False)
    assert env_int("RCM_TEST_NUMBER", 7) == 7 and env_float("RCM_TEST_NUMBER", 2.5) == 2.5
    monkeypatch.setenv("RCM_TEST_NUMBER", "")
    assert env_int("RCM_TEST_NUMBER", 7) == 7
    monkeypatch.setenv("RCM_TEST_NUMBER", " 12 ")
    assert env_int("RCM_TEST_NUMBER", 7) == 12 and env_float("RCM_TEST_NUMBER", 2.5) == 12.0


def test_the_relay_reads_its_limits_from_the_settings(settings, monkeypatch):
    from notifications import relay

    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 4
    settings.NOTIFICATIONS_RETRY_MAX_SECONDS = 6
    monkeypatch.setattr(relay.random, "uniform", lambda low, high: high)
    assert relay.max_attempts() == 2
    assert [relay.backoff_seconds(n) for n in (1, 2, 3, 10)] == [4, 6, 6, 6]


def test_the_webhook_timeout_comes_from_the_settings(settings, monkeypatch):
    from types import SimpleNamespace

    from notifications import channels

    seen = {}

    def post(url, **kwargs):
        seen["timeout"] = kwargs["timeout"]
        return SimpleNamespace(status_code=204)

    settings.WEBHOOK_TIMEOUT_SECONDS = 2.5
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    monkeypatch.setattr(channels, "http_post", post)
    monkeypatch.setattr(channels, "check_url", lambda url: None)
    monkeypatch.setattr(channels, "webhook_body", lambda outbox: b"{}")
    delivery = SimpleNamespace(
        webhook=SimpleNamespace(url="https://partner.example.org/hook", secret="whsec_" + "A" * 44),
        outbox=None,
        pk=SimpleNamespace(hex="0" * 32),
    )
    assert channels.deliver_webhook(delivery) == 204
    assert seen["timeout"] == 2.5
