"""Configuration from the environment (contract §2), production refusal, /healthz and request ids."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _manage(*args, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
    }
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def _production_env(**overrides):
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEYS": _key(),
        "BLIND_INDEX_KEY": _key(),
        "AUDIT_HMAC_KEY": _key(),
        "AUDIT_SIGNING_KEY": _key(),
        "ALLOWED_HOSTS": "referrals.example.org",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_production_refuses_to_start_without_keys():
    result = _manage("check", **_production_env(FIELD_ENCRYPTION_KEYS=None, AUDIT_HMAC_KEY=None))
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr and "AUDIT_HMAC_KEY" in result.stderr


def test_production_refuses_a_development_secret_key():
    result = _manage("check", **_production_env(SECRET_KEY="dev-insecure-" + "x" * 60))
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_a_malformed_key_without_printing_it():
    bad = "not-a-valid-key-" + secrets.token_hex(8)
    result = _manage("check", **_production_env(FIELD_ENCRYPTION_KEYS=bad))
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr
    assert bad not in result.stderr + result.stdout


def test_production_passes_the_deploy_check():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **_production_env())
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client, settings):
    settings.REDIS_URL = None
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "none"}


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "down"


@pytest.mark.django_db
def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert generated != "bad id with spaces" and len(generated) == 32


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_ENV", "prod"),
        ("DATABASE_URL", "not-a-database-url"),
        ("NOTIFICATIONS_RELAY_THREAD", "maybe"),
        ("NOTIFICATIONS_RELAY_INTERVAL", "fast"),
    ],
)
def test_a_bad_setting_stops_the_start_up_naming_its_variable(variable, value):
    """Every setting is read through config/env.py: a typo is refused (ImproperlyConfigured), never taken
    for a default, and the message names the variable (never its value)."""
    result = _manage("check", **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_the_serving_entrypoint_starts_the_embedded_relay_only_when_told(monkeypatch, settings):
    """No argv sniffing: config/wsgi.py (config/serving.py) calls start_embedded_relay(), which starts the
    thread once, with no broker, unless NOTIFICATIONS_RELAY_THREAD is false (real processes:
    tests/notifications/test_serving_relay.py)."""
    from notifications import apps as notification_apps

    started = []
    monkeypatch.setattr(notification_apps, "_started", False)
    monkeypatch.setattr(notification_apps, "start_relay_thread", lambda: started.append(True))
    settings.REDIS_URL = None
    settings.NOTIFICATIONS_RELAY_THREAD = False
    assert notification_apps.start_embedded_relay() is False
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.NOTIFICATIONS_RELAY_THREAD = True
    assert notification_apps.start_embedded_relay() is False
    settings.REDIS_URL = None
    assert notification_apps.start_embedded_relay() is True
    assert notification_apps.start_embedded_relay() is False  # once per process
    assert started == [True]
