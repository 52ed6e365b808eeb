"""Issue 14's tamperings, done as someone with owner rights on the database would (triggers lifted by hand):
each one makes ``manage.py verify_audit`` exit 1 — with the partner's copy of the signed checkpoints
(``--checkpoints FILE``) where the database alone cannot tell. SQLite and PostgreSQL alike; the tests
marked ``postgres`` tamper in ways only PostgreSQL offers."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import execute_from_command_line
from django.db import connection

from audit import checkpoints, tree
from audit.chain import event_hash
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditTreeNode, AuditTreeState
from audit.recorder import record
from audit.verification import (
    CHECKPOINT_HASH,
    CHECKPOINT_SIGNATURE,
    HASH,
    TRIGGERS,
    TRUNCATED,
    append_only_triggers_ok,
    verify_chain,
)

from .conftest import POSTGRES, raw, triggers_dropped


@pytest.fixture
def verify(capsys, monkeypatch):
    """``verify(*args)`` → (exit code, stdout, stderr) of ``manage.py verify_audit`` run by an operator."""
    from django.core.management import base

    monkeypatch.setattr(base.connections, "close_all", lambda: None)

    def run(*args):
        try:
            execute_from_command_line(["manage.py", "verify_audit", *map(str, args)])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def partner_copy(tmp_path):
    """Checkpoints at the given sequences, kept by a partner in a JSON-lines file (as the API serves them)."""

    def make(*sequences, stored=True):
        path = tmp_path / "checkpoints.jsonl"
        served = []
        for sequence in sequences:
            event = AuditEvent.objects.get(sequence=sequence)
            made = checkpoints.create(sequence=sequence, hash_=event.hash, verified=False)
            served.append(checkpoints.as_served(made))
        if not stored:  # the database's owner also removed them here: only the partner's copy is left
            AuditCheckpoint.objects.all().delete()
        path.write_text("".join(json.dumps(c) + "\n" for c in served))
        return path

    return make


def _set_head(sequence: int, last_hash: str) -> None:
    AuditChainHead.objects.filter(id=1).update(sequence=sequence, last_hash=last_hash)


def _rechain_from(sequence: int) -> None:
    """What a holder of AUDIT_HMAC_KEY can do: recompute every hash from ``sequence`` on and the head — and
    the stored Merkle tree (plain SHA-256, no key needed), which would otherwise give it away
    (``tree_node_mismatch``)."""
    previous = AuditEvent.objects.get(sequence=sequence - 1).hash if sequence > 1 else "0" * 64
    for event in AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"):
        event.prev_hash = previous
        event.hash = previous = event_hash(event)
        raw(
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE sequence = %s",
            [event.prev_hash, event.hash, event.sequence],
        )
    last = AuditEvent.objects.order_by("-sequence").first()
    _set_head(last.sequence, last.hash)
    AuditTreeNode.objects.all().delete()
    AuditTreeState.objects.all().delete()
    tree.extend(last.sequence)


def _sqlite() -> bool:
    return connection.vendor == "sqlite"


def test_an_untouched_log_passes_with_the_partners_checkpoints(chain, partner_copy, verify):
    path = partner_copy(4, 10)
    code, out, err = verify("--checkpoints", path)
    assert code == 0, err
    assert "audit chain intact: 10 events" in out and "signed checkpoints match" in out


def test_events_cut_off_the_end_and_the_head_rewritten(chain, partner_copy, verify):
    """Issue 14, 1: the head check alone is fooled; a checkpoint held elsewhere is not."""
    path = partner_copy(10, stored=False)
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent WHERE sequence > 7")
    _set_head(7, chain[6].hash)
    assert verify()[0] == 0  # what the database alone can prove: nothing (docs/audit.md says so)
    code, out, err = verify("--checkpoints", path)
    assert code == 1
    assert "sequence 10" in err and "chain ends before a signed checkpoint" in err
    assert "ends at sequence 7" in err


def test_events_cut_off_the_end_are_caught_by_the_stored_checkpoints_too(chain, partner_copy, verify):
    partner_copy(10, stored=True)
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent WHERE sequence > 7")
    _set_head(7, chain[6].hash)
    code, _out, err = verify()
    assert code == 1 and "chain ends before a signed checkpoint" in err
    assert verify_chain().reason == TRUNCATED


def test_a_wiped_log(chain, partner_copy, verify):
    path = partner_copy(10, stored=False)
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent")
    raw("DELETE FROM audit_auditchainhead")
    code, out, _err = verify()
    assert code == 0 and "no events yet" in out
    code, _out, err = verify("--checkpoints", path)
    assert code == 1 and "chain ends before a signed checkpoint" in err and "ends at sequence 0" in err


def test_a_rewritten_event_rechained_with_the_key(chain, partner_copy, verify):
    """Whoever holds AUDIT_HMAC_KEY can rewrite an event and re-chain everything after it consistently:
    the signed checkpoint (whose key the database's owner does not hold) still tells."""
    path = partner_copy(5, 10, stored=False)
    victim = chain[4]
    with triggers_dropped():
        raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = 5")
        _rechain_from(5)
    assert verify()[0] == 0
    code, _out, err = verify("--checkpoints", path)
    assert code == 1
    assert f"event {victim.id} (sequence 5)" in err and "has another hash" in err
    assert verify_chain(checkpoints=json_lines(path)).reason == CHECKPOINT_HASH


def json_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "forge",
    [
        lambda c: {
            **c,
            "signature": c["signature"][:-4] + ("AAA=" if not c["signature"].endswith("AAA=") else "BBB="),
        },
        lambda c: {**c, "sequence": c["sequence"] + 1},
        lambda c: {**c, "at": "2020-01-01T00:00:00Z"},
        lambda c: {**c, "signature": "not base64!"},
    ],
    ids=["signature", "sequence", "at", "garbage"],
)
def test_a_checkpoint_whose_signature_does_not_verify(chain, partner_copy, verify, tmp_path, forge):
    good = json_lines(partner_copy(6, stored=False))[0]
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps(forge(good)) + "\n")
    code, _out, err = verify("--checkpoints", forged)
    assert code == 1 and "signature does not verify" in err
    assert verify_chain(checkpoints=json_lines(forged)).reason == CHECKPOINT_SIGNATURE


def test_a_checkpoint_signed_by_another_key(chain, verify, tmp_path, settings):
    settings.AUDIT_SIGNING_KEY = uuid.uuid4().bytes * 2  # another 32-byte key
    other = checkpoints.as_served(checkpoints.create(sequence=3, hash_=chain[2].hash, verified=False))
    settings.AUDIT_SIGNING_KEY = settings.AUDIT_SIGNING_KEY[::-1]
    AuditCheckpoint.objects.all().delete()
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps(other) + "\n")
    assert verify("--checkpoints", path)[0] == 1


@pytest.mark.parametrize(
    "line", ["{}", "not json", '{"sequence": "1", "hash": "x", "at": "y", "signature": ""}']
)
def test_a_malformed_checkpoints_file(chain, verify, tmp_path, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    code, _out, err = verify("--checkpoints", path)
    assert code == 1 and "line 1: not a checkpoint" in err


def test_a_missing_checkpoints_file(chain, verify, tmp_path):
    code, _out, err = verify("--checkpoints", tmp_path / "nowhere.jsonl")
    assert code == 1 and "cannot read" in err


def test_the_event_id_is_covered_by_the_hash(chain, verify):
    """Issue 14, 3: changing an event's id breaks the chain."""
    victim = chain[3]
    other = uuid.uuid4()
    with triggers_dropped():
        raw(
            "UPDATE audit_auditevent SET id = %s WHERE sequence = 4",
            [other.hex if _sqlite() else str(other)],
        )
    code, _out, err = verify()
    assert code == 1 and f"event {other} (sequence 4)" in err and "altered" in err
    assert verify_chain().reason == HASH
    assert victim.sequence == 4


def test_missing_append_only_triggers_fail_the_verification(chain, verify):
    """Issue 14, 2: dropping the triggers is reported, although the chain itself is intact."""
    with triggers_dropped():
        assert not append_only_triggers_ok()
        code, out, err = verify()
        assert code == 1
        assert "append-only triggers of audit_auditevent are missing or disabled" in err
        assert verify_chain().reason == TRIGGERS
    assert append_only_triggers_ok()
    assert verify()[0] == 0


def test_a_trigger_replaced_by_one_that_refuses_nothing(chain, verify):
    from .conftest import SQLITE

    with triggers_dropped():
        if _sqlite():
            raw(
                "CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent "
                "BEGIN SELECT 1; END"
            )
            raw(SQLITE.TRIGGERS[1][1])
        else:
            raw(
                "CREATE OR REPLACE FUNCTION audit_auditevent_refuse_change() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END; $$"
            )
            raw(POSTGRES.TRIGGER)
        assert verify()[0] == 1
        if not _sqlite():
            with connection.cursor() as cursor:
                cursor.execute(POSTGRES.FUNCTION)  # no parameters: its text holds a literal %
        else:
            raw("DROP TRIGGER audit_auditevent_no_update")
            raw(SQLITE.TRIGGERS[0][1])
            raw("DROP TRIGGER audit_auditevent_no_delete")
    assert verify()[0] == 0


@pytest.mark.postgres
def test_a_disabled_trigger_on_postgresql(chain, verify):
    raw("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
    try:
        raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = 99")  # nothing refuses it now
        code, _out, err = verify()
        assert code == 1 and "missing or disabled" in err
        raw("ALTER TABLE audit_auditevent ENABLE REPLICA TRIGGER audit_auditevent_append_only")
        assert verify()[0] == 1  # fires only for replication sessions: not for the application
    finally:
        raw("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")
    assert verify()[0] == 0


# --- versions of the hash: the chains written before the id was covered stay verifiable -------------------


def _legacy_chain(count: int) -> None:
    """Events as the application wrote them before version 2 (the id not hashed)."""
    from audit.sequencer import _insert_events

    previous = "0" * 64
    for n in range(count):
        event = AuditEvent(
            sequence=n + 1, actor_type="system", action="legacy.event", detail={"n": n}, prev_hash=previous
        )
        event.hash = previous = event_hash(event, version=1)
        AuditChainHead.objects.update_or_create(id=1, defaults={"sequence": n, "last_hash": event.prev_hash})
        _insert_events([event], n + 1)


def test_a_legacy_chain_then_version_2_events_verify(db, verify):
    _legacy_chain(4)
    record(actor_type="system", action="test.event")
    record(actor_type="system", action="test.event")
    code, out, err = verify()
    assert code == 0, err
    assert "6 events" in out


def test_a_version_1_hash_after_version_2_events_is_refused(db, verify):
    _legacy_chain(2)
    record(actor_type="system", action="test.event")
    forged = record(actor_type="system", action="test.event")
    forged.hash = event_hash(forged, version=1)  # a downgrade would drop the id from the hash
    with triggers_dropped():
        raw(
            "UPDATE audit_auditevent SET hash = %s WHERE sequence = 4",
            [forged.hash],
        )
    _set_head(4, forged.hash)
    code, _out, err = verify()
    assert code == 1 and "(sequence 4)" in err


# --- incremental verification -----------------------------------------------------------------------------


def test_incremental_verification_starts_at_the_last_verified_checkpoint(chain, verify):
    from audit.tasks import verify_and_checkpoint

    verify_and_checkpoint()  # verified checkpoint at sequence 10
    more = [record(actor_type="system", action="test.event", detail={"m": n}) for n in range(3)]
    code, out, _err = verify("--incremental")
    assert code == 0 and "3 events after the verified checkpoint at sequence 10" in out
    with triggers_dropped():
        raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = 12")
    code, _out, err = verify("--incremental")
    assert code == 1 and f"event {more[1].id} (sequence 12)" in err


def test_incremental_verification_checks_its_anchor(chain, verify):
    from audit.tasks import verify_and_checkpoint

    verify_and_checkpoint()
    with triggers_dropped():
        raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = 10")
    code, _out, err = verify("--incremental")
    assert code == 1 and "(sequence 10)" in err
    AuditCheckpoint.objects.update(signature="A" * 88)
    code, _out, err = verify("--incremental")
    assert code == 1 and "signature does not verify" in err


def test_full_verification_reports_its_throughput(chain, verify):
    code, out, _err = verify()
    assert code == 0 and "events/s)" in out and "10 events in" in out
