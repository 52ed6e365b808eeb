"""Keys come from the environment only, are never in tracked files, and a missing or wrong key is a clear
error at start-up (system checks) — messages name keys by fingerprint, never by value."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core import checks
from django.test import override_settings

from referrals import checks as referral_checks
from referrals import crypto
from referrals.models import Case

from .conftest import API, key_text, new_key

ROOT = Path(__file__).resolve().parents[2]
#: ``SOMETHING_KEY = "<url-safe base64 of 32 bytes>"`` in any syntax (Python, YAML, env files, JSON).
KEY_ASSIGNMENT = re.compile(
    rb"(?i)(key|keys|secret)[\w\"']*\s*[=:]\s*[\"'\[]?\s*([A-Za-z0-9_\-+/]{42,44}={0,2})(?![A-Za-z0-9_\-+/])"
)


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name.decode() for name in listed.split(b"\0") if name]


def _is_32_byte_key(text: bytes) -> bool:
    try:
        raw = base64.urlsafe_b64decode(text.replace(b"+", b"-").replace(b"/", b"_") + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 32


def test_no_key_material_in_tracked_files():
    files = tracked_files()
    assert len(files) > 50
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert not [n for n in names if n.startswith("var/") or n.endswith((".env", ".key", ".pem"))]
    assert "var/dev-keys.json" not in names
    configured = [
        *settings.FIELD_ENCRYPTION_KEYS,
        settings.BLIND_INDEX_KEY,
        settings.AUDIT_HMAC_KEY,
        settings.AUDIT_SIGNING_KEY,
    ]
    configured_forms = [
        f for k in configured for f in (key_text(k).encode(), key_text(k).rstrip("=").encode())
    ]
    offenders = []
    for path in files:
        if not path.is_file():
            continue
        blob = path.read_bytes()
        offenders += [f"{path.name}: configured key" for form in configured_forms if form in blob]
        offenders += [
            f"{path.name}: key literal" for m in KEY_ASSIGNMENT.finditer(blob) if _is_32_byte_key(m.group(2))
        ]
    assert offenders == []


def test_the_key_pattern_catches_a_committed_key():
    """The scan above can fail: a key written into a settings or env file is caught."""
    key = key_text(new_key()).encode()
    for sample in (
        b"FIELD_ENCRYPTION_KEYS=" + key,
        b'BLIND_INDEX_KEY = "' + key + b'"',
        b"field_encryption_keys: [" + key + b"]",
    ):
        assert [m for m in KEY_ASSIGNMENT.finditer(sample) if _is_32_byte_key(m.group(2))], sample


def test_migrations_and_settings_hold_no_key_and_no_key_default():
    sources = [
        *ROOT.glob("*/migrations/*.py"),
        *ROOT.glob("config/settings/*.py"),
        *ROOT.glob("*/fixtures/*"),
    ]
    assert any("migrations" in str(p) for p in sources)
    for path in sources:
        text = path.read_bytes()
        assert not [m for m in KEY_ASSIGNMENT.finditer(text) if _is_32_byte_key(m.group(2))], path
        for key in (*settings.FIELD_ENCRYPTION_KEYS, settings.BLIND_INDEX_KEY):
            assert key_text(key).encode() not in text and key not in text, path
    base = (ROOT / "config/settings/base.py").read_text()
    assert 'env_list("FIELD_ENCRYPTION_KEYS"' in base and 'env_str("BLIND_INDEX_KEY"' in base


def test_development_keys_live_in_var_outside_git():
    assert (
        subprocess.run(["git", "check-ignore", "-q", "var/dev-keys.json"], cwd=ROOT, check=False).returncode
        == 0
    )


def test_logs_of_a_full_workflow_carry_no_key(full_case, iom, api_as, caplog):
    caplog.set_level(logging.DEBUG)
    client = api_as(iom)
    client.get(f"{API}/cases/{full_case['case'].pk}/")
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key()]):
        crypto.forget_cached_keys()
        assert client.get(f"{API}/cases/{full_case['case'].pk}/").status_code == 503
    text = caplog.text
    for key in (
        *settings.FIELD_ENCRYPTION_KEYS,
        settings.BLIND_INDEX_KEY,
        settings.AUDIT_HMAC_KEY,
        settings.AUDIT_SIGNING_KEY,
    ):
        assert key_text(key) not in text and key.hex() not in text


def test_error_messages_never_carry_keys_or_values(full_case):
    case = Case.objects.get(pk=full_case["case"].pk)
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key()]):
        crypto.forget_cached_keys()
        with pytest.raises(crypto.KeyUnavailable) as caught:
            _ = Case.objects.get(pk=case.pk).summary
    message = str(caught.value)
    assert "e1:" not in message and str(case.pk) not in message and "Sumario" not in message


# --- system checks ------------------------------------------------------------------------------


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_settings_check():
    assert referral_checks.check_encryption_settings() == []
    with override_settings(FIELD_ENCRYPTION_KEYS=[]):
        assert ids(referral_checks.check_encryption_settings()) == ["referrals.E001"]
    with override_settings(FIELD_ENCRYPTION_KEYS=[b"short"]):
        assert ids(referral_checks.check_encryption_settings()) == ["referrals.E002"]
    key = new_key()
    with override_settings(FIELD_ENCRYPTION_KEYS=[key, key]):
        assert ids(referral_checks.check_encryption_settings()) == ["referrals.W001"]
    with override_settings(BLIND_INDEX_KEY=b""):
        assert ids(referral_checks.check_encryption_settings()) == ["referrals.E003"]


def test_data_key_check_reports_a_missing_key_by_fingerprint(iom_actor, make_case):
    key_a, key_b = new_key(), new_key()
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        make_case(iom_actor)
        make_case(iom_actor)
        assert referral_checks.check_data_keys(databases=["default"]) == []
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b]):
        messages = referral_checks.check_data_keys(databases=["default"])
        assert ids(messages) == ["referrals.E004"]
        assert messages[0].level == checks.ERROR
        assert crypto.key_fingerprint(key_a) in messages[0].msg and "2 case data key(s)" in messages[0].msg
        assert key_text(key_a) not in str(messages[0]) and key_text(key_b) not in str(messages[0])
        assert referral_checks.check_data_keys(databases=None) == []  # not a database check run
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a]):
        messages = referral_checks.check_data_keys(databases=["default"])
        assert ids(messages) == ["referrals.I001"] and "rotate_keys" in messages[0].hint


def test_data_key_check_unwraps_a_sample(iom_actor, make_case):
    case = make_case(iom_actor)
    wrapped = bytearray(Case.objects.values_list("wrapped_data_key", flat=True).get(pk=case.pk))
    wrapped[-1] ^= 1  # the right key id, a body that no longer authenticates
    Case.objects.filter(pk=case.pk).update(wrapped_data_key=bytes(wrapped))
    crypto.forget_cached_keys()
    assert ids(referral_checks.check_data_keys(databases=["default"])) == ["referrals.E005"]


def test_a_wrong_key_stops_migrate_and_check_at_start_up(tmp_path):
    """Start-up (``scripts/web`` runs ``migrate`` first) refuses a key set that cannot read the data.

    Needs ``referrals.checks.register()`` in ``ReferralsConfig.ready()``.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path}/startup.sqlite3",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        FIELD_ENCRYPTION_KEYS=key_text(new_key()),
    )

    def manage(*args, **extra):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            timeout=180,
            check=False,
        )

    assert manage("migrate", "-v0").returncode == 0
    seeded = manage("seed_demo")
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    other = key_text(new_key())
    for args in (("check", "--database", "default"), ("migrate", "-v0")):
        result = manage(*args, FIELD_ENCRYPTION_KEYS=other)
        output = (result.stdout + result.stderr).decode()
        assert result.returncode != 0 and "referrals.E004" in output, output[-2000:]
        assert other not in output and env["FIELD_ENCRYPTION_KEYS"] not in output
    assert manage("check", "--database", "default").returncode == 0
