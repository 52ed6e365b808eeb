"""Signed checkpoints (contract §6.3): Ed25519 over "{sequence}.{hash}.{at}", checked with an independent
verifier (PyNaCl) and RFC 8032's known answer; ``manage.py audit_checkpoint``; the hourly job; the API."""

from __future__ import annotations

import base64
import json
import re

import nacl.exceptions
import nacl.signing
import pytest
from django.core.management import call_command

from audit import checkpoints
from audit.models import AuditCheckpoint, AuditEvent
from audit.recorder import record
from audit.tasks import verify_audit_chain
from tests.api.helpers import assert_problem

#: RFC 8032 §7.1, TEST 1: the secret key (seed), its public key and the signature of the empty message.
RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIGNATURE = "".join(
    (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    )
)
API = "/api/v1/audit/checkpoints/"


@pytest.fixture
def chain(db):
    return [record(actor_type="system", action="test.event", detail={"n": n}) for n in range(5)]


def _independent_verify(checkpoint: dict, public_key_b64: str) -> bytes:
    """PyNaCl (libsodium), not the `cryptography` package that signed: raises BadSignatureError."""
    key = nacl.signing.VerifyKey(base64.b64decode(public_key_b64))
    message = f"{checkpoint['sequence']}.{checkpoint['hash']}.{checkpoint['at']}".encode()
    return key.verify(message, base64.b64decode(checkpoint["signature"]))


def test_rfc8032_known_answer(settings):
    settings.AUDIT_SIGNING_KEY = bytes.fromhex(RFC8032_SEED)
    assert checkpoints.public_key_bytes().hex() == RFC8032_PUBLIC
    document = checkpoints.public_key_document()
    assert {k: document[k] for k in ("algorithm", "public_key")} == {
        "algorithm": "ed25519",
        "public_key": base64.b64encode(bytes.fromhex(RFC8032_PUBLIC)).decode(),
    }
    assert checkpoints.private_key().sign(b"").hex() == RFC8032_SIGNATURE


def test_a_checkpoint_verifies_with_an_independent_verifier(chain):
    made = checkpoints.as_served(checkpoints.create(sequence=5, hash_=chain[-1].hash, verified=False))
    assert set(made) == {
        "sequence",
        "hash",
        "at",
        "signature",
        "tree_size",
        "root_hash",
        "note",
        "cosignatures",
    }
    assert made["sequence"] == 5 and made["hash"] == chain[-1].hash
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made["at"])
    assert len(base64.b64decode(made["signature"], validate=True)) == 64
    public = checkpoints.public_key_document()["public_key"]
    assert _independent_verify(made, public) == f"5.{chain[-1].hash}.{made['at']}".encode()
    for field, value in [("sequence", 4), ("hash", "0" * 64), ("at", "2020-01-01T00:00:00Z")]:
        with pytest.raises(nacl.exceptions.BadSignatureError):
            _independent_verify({**made, field: value}, public)
    assert checkpoints.signature_valid(made)
    assert not checkpoints.signature_valid({**made, "sequence": 4})


def test_the_command_prints_the_checkpoint_json_last(chain, capsys):
    call_command("audit_checkpoint")
    out = capsys.readouterr().out.strip().splitlines()
    served = json.loads(out[-1])
    stored = AuditCheckpoint.objects.get()
    assert served == checkpoints.as_served(stored)
    assert served["sequence"] == 5 and served["hash"] == chain[-1].hash
    assert stored.verified_at is not None  # signed right after a passing verification
    _independent_verify(served, checkpoints.public_key_document()["public_key"])


def test_the_command_refuses_to_sign_a_broken_chain(chain, monkeypatch):
    from django.core.management import base

    from .conftest import raw, triggers_dropped

    monkeypatch.setattr(base.connections, "close_all", lambda: None)  # keep the test's transaction open

    with triggers_dropped():
        raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = 2")
    with pytest.raises(SystemExit) as exit_:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", "audit_checkpoint"])
    assert exit_.value.code == 1
    assert not AuditCheckpoint.objects.exists()


def test_checkpoints_are_not_audit_events(chain):
    before = AuditEvent.objects.count()
    verify_audit_chain.apply().get()
    assert AuditEvent.objects.count() == before


def test_the_hourly_job_verifies_only_what_came_after_its_last_checkpoint(chain):
    first = verify_audit_chain.apply().get()
    assert first == {"ok": True, "checked": 5, "checkpoint": 5}
    for n in range(3):
        record(actor_type="system", action="test.event", detail={"later": n})
    second = verify_audit_chain.apply().get()
    assert second == {"ok": True, "checked": 3, "checkpoint": 8}
    assert list(AuditCheckpoint.objects.values_list("sequence", flat=True)) == [5, 8]


def test_the_beat_schedule_and_the_embedded_relay_run_the_job_hourly():
    from config.celery import app
    from notifications import apps as notification_apps

    entry = app.conf.beat_schedule["audit-verify-chain"]
    assert entry["task"] == verify_audit_chain.name and float(entry["schedule"]) <= 3600
    # The embedded relay derives its housekeeping from beat's schedule: the same job, the same period.
    assert notification_apps.HOUSEKEEPING["audit-verify-chain"] == (float(entry["schedule"]), entry["task"])


# --- the API -------------------------------------------------------------------------------------------


def test_list_oldest_first_paginated_and_shaped(iom, auditor, chain):
    made = [checkpoints.create(sequence=n, hash_=chain[n - 1].hash, verified=False) for n in (1, 3, 5)]
    client = auditor(iom)
    response = client.get(API + "?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    assert body["results"] == [checkpoints.as_served(c) for c in made[:2]]
    assert body["previous"] is None and body["next"]
    following = client.get(body["next"]).json()
    assert following["results"] == [checkpoints.as_served(made[2])] and following["next"] is None
    key = client.get(API + "key/").json()
    for item in body["results"] + following["results"]:
        _independent_verify(item, key["public_key"])


def test_every_institution_sees_every_checkpoint(iom, dp, third, auditor, chain):
    checkpoints.create(sequence=5, hash_=chain[-1].hash, verified=False)
    seen = [auditor(i).get(API).json()["results"] for i in (iom, dp, third)]
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == 1


def test_key_document(iom, auditor):
    response = auditor(iom).get(API + "key/")
    assert response.status_code == 200
    assert response.json() == checkpoints.public_key_document()
    assert len(base64.b64decode(response.json()["public_key"], validate=True)) == 32


@pytest.mark.parametrize("path", [API, API + "key/"])
def test_without_a_token_401_and_without_the_scope_403(iom, api_as, path):
    from rest_framework.test import APIClient

    anonymous = APIClient().get(path)
    assert_problem(anonymous, 401, "not-authenticated")
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert_problem(api_as(iom, scopes=["referrals:read"]).get(path), 403, "permission-denied")


@pytest.mark.parametrize(
    "query", ["?unknown=1", "?cursor=not-a-cursor", "?sequence=3"], ids=["unknown", "cursor", "filter"]
)
def test_bad_queries_are_400(iom, auditor, query):
    assert_problem(auditor(iom).get(API + query), 400, "validation-error")
    assert_problem(auditor(iom).get(API + "key/?x=1"), 400, "validation-error")
