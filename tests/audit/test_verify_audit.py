"""``manage.py verify_audit`` (contract §1): exit 0 and a summary when intact; exit 1 naming the first bad
event when a row was altered, removed, reordered or forged (the triggers dropped by hand first)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.core.management import execute_from_command_line

from audit.chain import canonical
from audit.models import AuditEvent
from audit.verification import GAP, HASH, HEAD, PREV_HASH, verify_chain

from .conftest import raw, triggers_dropped


@pytest.fixture
def run(capsys, monkeypatch):
    """The command as an operator runs it (argv parsing, exit status, stdout/stderr) → (code, out, err).

    ``run_from_argv`` closes every connection when done; here that would end the test's own transaction
    on PostgreSQL, so that one call is neutralized.
    """
    from django.core.management import base

    monkeypatch.setattr(base.connections, "close_all", lambda: None)
    return lambda: _run(capsys)


def _run(capsys) -> tuple[int, str, str]:
    try:
        execute_from_command_line(["manage.py", "verify_audit"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_an_intact_chain_exits_0_with_a_summary(chain, run):
    code, out, err = run()
    assert code == 0, err
    assert f"audit chain intact: 10 events, sequence 1..10, last hash {chain[-1].hash}" in out


def test_an_empty_chain_is_intact(db, run):
    code, out, _ = run()
    assert code == 0 and "no events" in out


def test_a_tampered_row_exits_1_naming_it(chain, run):
    victim = chain[4]
    with triggers_dropped():
        raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = %s", [victim.sequence])
    code, out, err = run()
    assert code == 1
    assert f"event {victim.id} (sequence 5)" in err
    assert "altered" in err and "4 events verified" in err
    assert verify_chain().reason == HASH


@pytest.mark.parametrize(
    ("column", "value"),
    [("at", "2020-01-01 00:00:00"), ("actor_id", "someone-else"), ("object_id", "other"), ("ip", "10.0.0.9")],
)
def test_any_altered_column_is_detected(chain, column, value):
    with triggers_dropped():
        raw(f"UPDATE audit_auditevent SET {column} = %s WHERE sequence = 7", [value])  # noqa: S608
    result = verify_chain()
    assert (result.ok, result.bad_sequence, result.bad_id, result.reason) == (
        False,
        7,
        str(chain[6].id),
        HASH,
    )


def test_a_deleted_row_is_a_gap(chain, run):
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent WHERE sequence = 3")
    code, _, err = run()
    assert code == 1
    assert f"event {chain[3].id} (sequence 4)" in err and "missing" in err
    assert verify_chain().reason == GAP


def test_renumbered_rows_after_a_deletion_still_break_the_chain(chain):
    """Deleting a row and renumbering the later ones hides the gap, not the broken link."""
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent WHERE sequence = 3")
        for sequence in range(4, 11):
            raw("UPDATE audit_auditevent SET sequence = %s WHERE sequence = %s", [sequence - 1, sequence])
    result = verify_chain()
    assert (result.bad_sequence, result.bad_id, result.reason) == (3, str(chain[3].id), PREV_HASH)


def test_deleting_the_last_rows_is_detected_by_the_chain_head(chain, run):
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent WHERE sequence >= 9")
    code, _, err = run()
    assert code == 1
    assert "at sequence 9" in err and "head records sequence 10" in err
    assert verify_chain().reason == HEAD


def test_reordered_rows_are_detected(chain):
    """Swapping two events' positions: the first out of place breaks the link to its predecessor."""
    with triggers_dropped():
        raw("UPDATE audit_auditevent SET sequence = -1 WHERE sequence = 5")
        raw("UPDATE audit_auditevent SET sequence = 5 WHERE sequence = 6")
        raw("UPDATE audit_auditevent SET sequence = 6 WHERE sequence = -1")
    result = verify_chain()
    assert (result.bad_sequence, result.bad_id, result.reason) == (5, str(chain[5].id), PREV_HASH)


def test_a_row_rewritten_with_a_hash_forged_without_the_key_is_detected(chain, run):
    """Whoever rewrites a row and recomputes its hash (and the next link) without AUDIT_HMAC_KEY fails."""
    victim = AuditEvent.objects.get(sequence=6)
    victim.action = "test.forged"
    forged = hmac.new(b"not-the-key", canonical(victim), hashlib.sha256).hexdigest()
    with triggers_dropped():
        raw(
            "UPDATE audit_auditevent SET action = %s, hash = %s WHERE sequence = 6",
            ["test.forged", forged],
        )
        raw("UPDATE audit_auditevent SET prev_hash = %s WHERE sequence = 7", [forged])
    code, _, err = run()
    assert code == 1 and f"event {victim.id} (sequence 6)" in err


def test_an_inserted_forged_event_is_detected(chain):
    """Even INSERT (allowed to the app) cannot extend the chain without the key."""
    raw(
        "INSERT INTO audit_auditevent (id, sequence, at, actor_type, actor_id, actor_label, "
        "actor_institution, action, object_type, object_id, case_id, institutions, ip, request_id, "
        "outcome, detail, prev_hash, hash) VALUES (%s, 11, %s, 'system', '', '', '', 'test.forged', "
        "'', '', '', '', '', '', 'success', '{}', %s, %s)",
        ["00000000000000000000000000000001", chain[-1].at, chain[-1].hash, "f" * 64],
    )
    result = verify_chain()
    assert (result.ok, result.bad_sequence, result.reason) == (False, 11, HASH)


def test_the_time_in_the_hashed_encoding_is_the_same_text_as_before():
    """The encoding of ``at`` is the text every stored hash was made with: the same as
    ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` in UTC, for whole seconds, other time zones and odd years too."""
    import random
    from datetime import UTC, datetime, timedelta, timezone

    from audit.chain import _text

    rng = random.Random(14)
    panama = timezone(timedelta(hours=-5))
    moments = [
        datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 31, 20, 0, 0, 1, tzinfo=panama),
        datetime(999, 1, 1, 0, 0, 0, 5, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 5),
    ]
    moments += [
        datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**16)) for _ in range(2000)
    ]
    for moment in moments:
        utc = moment.astimezone(UTC) if moment.utcoffset() else moment
        assert _text("at", moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.django_db
def test_the_verifiers_row_stream_gives_the_encoding_of_the_stored_events():
    """On PostgreSQL the verification reads the events as the database's text (``id``, ``at`` by
    ``to_char``, ``detail`` as JSON text): each row must encode exactly as the ORM's values do."""
    from datetime import UTC, datetime

    from audit.chain import ROW_FIELDS, canonical_values
    from audit.models import AuditEvent
    from audit.recorder import record
    from audit.verification import _rows

    details = [
        {},
        {"b": 1, "a": [1, 2.5, None, True], "z": {"y": "ñandú — «x»", "x": "\u2028"}},
        {"cause": "not-visible", "count": 12345678901234},
    ]
    for detail in details:
        record(actor_type="system", action="test.event", detail=detail, institutions=["IOM", "DP"])
    streamed = list(_rows(0, 2))
    stored = [
        dict(zip(ROW_FIELDS, row, strict=True))
        for row in AuditEvent.objects.order_by("sequence").values_list(*ROW_FIELDS)
    ]
    assert len(streamed) == len(stored) == 3
    for row, orm in zip(streamed, stored, strict=True):
        assert canonical_values(row) == canonical_values(orm)
        assert row["hash"] == orm["hash"]
    assert datetime.now(UTC).year >= 1000  # the years the database formats itself
