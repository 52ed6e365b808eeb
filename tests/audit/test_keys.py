"""The checkpoint signing key (``AUDIT_SIGNING_KEY``): generated into var/ in development with a warning,
required in production, known to ``check --deploy``; and the idempotency fingerprint, keyed (issue 14, 4)."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from django.core import checks
from django.test import override_settings

from audit.checks import check_append_only, check_signing_key
from config import env
from plumbing.idempotency import request_hash
from tests.config.test_settings_and_health import _manage, _production_env

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return env.new_key_text()


def _ids(messages) -> set[str]:
    return {m.id for m in messages}


def test_deploy_check_knows_the_signing_key(settings):
    with override_settings(AUDIT_SIGNING_KEY=b"", AUDIT_SIGNING_KEY_IS_DEVELOPMENT=False):
        assert _ids(check_signing_key()) == {"audit.E001"}
    with override_settings(AUDIT_SIGNING_KEY=b"short", AUDIT_SIGNING_KEY_IS_DEVELOPMENT=False):
        assert _ids(check_signing_key()) == {"audit.E001"}
    with override_settings(AUDIT_SIGNING_KEY=secrets.token_bytes(32), AUDIT_SIGNING_KEY_IS_DEVELOPMENT=True):
        assert _ids(check_signing_key()) == {"audit.E002"}  # the generated development key
    same = settings.AUDIT_HMAC_KEY
    with override_settings(AUDIT_SIGNING_KEY=same, AUDIT_SIGNING_KEY_IS_DEVELOPMENT=False):
        assert _ids(check_signing_key()) == {"audit.E003"}
    with override_settings(AUDIT_SIGNING_KEY=secrets.token_bytes(32), AUDIT_SIGNING_KEY_IS_DEVELOPMENT=False):
        assert check_signing_key() == []
    # Registered as a deployment check: `check --deploy` runs it, a plain `check` does not.
    with override_settings(AUDIT_SIGNING_KEY=b"", AUDIT_SIGNING_KEY_IS_DEVELOPMENT=False):
        assert "audit.E001" in _ids(checks.run_checks(include_deployment_checks=True))
        assert "audit.E001" not in _ids(checks.run_checks(include_deployment_checks=False))


def test_the_database_check_reports_missing_triggers(db):
    from .conftest import triggers_dropped

    assert check_append_only(databases=["default"]) == []
    with triggers_dropped():
        assert _ids(check_append_only(databases=["default"])) == {"audit.E004"}


def test_production_requires_the_signing_key(tmp_path):
    environment = _production_env(AUDIT_SIGNING_KEY=None, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    environment.pop("AUDIT_SIGNING_KEY", None)
    result = _manage("check", **environment)
    assert result.returncode != 0 and "AUDIT_SIGNING_KEY" in result.stderr
    result = _manage("check", "--deploy", **_production_env(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3"))
    assert "audit.E00" not in result.stdout + result.stderr


def test_development_generates_the_signing_key_into_an_existing_key_file(tmp_path, monkeypatch, capsys):
    older = {
        "FIELD_ENCRYPTION_KEYS": _key(),
        "BLIND_INDEX_KEY": _key(),
        "AUDIT_HMAC_KEY": _key(),
        "SECRET_KEY": "x",
    }
    path = tmp_path / "dev-keys.json"
    path.write_text(json.dumps(older))
    monkeypatch.setattr(env, "VAR_DIR", tmp_path)
    values = env.dev_secrets()
    assert {k: values[k] for k in older} == older  # the keys already there are kept
    assert len(env.decode_key(values["AUDIT_SIGNING_KEY"], "AUDIT_SIGNING_KEY")) == 32
    assert json.loads(path.read_text()) == values
    assert "WARNING: generated development keys AUDIT_SIGNING_KEY" in capsys.readouterr().err
    assert env.dev_secrets() == values  # once
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_idempotency_fingerprint_is_keyed(settings):
    """Whoever holds the database cannot confirm a guessed body by hashing candidates."""
    body = {"subject": {"given_name": "María", "document_number": "V12345678"}}
    plain = hashlib.sha256(
        ("POST /api/v1/cases/\n" + json.dumps(body, sort_keys=True, separators=(",", ":"))).encode()
    ).hexdigest()
    fingerprint = request_hash("POST", "/api/v1/cases/", body)
    assert fingerprint != plain and len(fingerprint) == 64
    assert request_hash("POST", "/api/v1/cases/", json.loads(json.dumps(body))) == fingerprint  # equal JSON
    assert request_hash("POST", "/api/v1/cases/", {**body, "summary": "x"}) != fingerprint
    settings.SECRET_KEY = "another-" + secrets.token_urlsafe(50)
    assert request_hash("POST", "/api/v1/cases/", body) != fingerprint  # a server key decides it
