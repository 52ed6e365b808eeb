"""The append path's cost cuts (issue 21, appends from 8 processes vs 1; docs/performance.md): ``record``
builds its event positionally, the queue INSERT is built once and bound on the server (PostgreSQL, prepared
after a few runs), and the sequencer hashes the queue rows as text and lets the server copy them into the
chain. Each cut must keep what is recorded, queued, sealed and verified exactly as before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from audit import sequencer
from audit.chain import ROW_FIELDS, event_hash
from audit.models import AuditChainHead, AuditEvent, AuditQueue
from audit.recorder import batch, record
from audit.verification import verify_chain

pytestmark = pytest.mark.django_db(transaction=True)

COLUMNS = [f.attname for f in AuditEvent._meta.get_fields()]
RECORDED = [name for name in COLUMNS if name not in ("sequence", "prev_hash", "hash")]


@pytest.fixture(autouse=True)
def asynchronous(monkeypatch):
    """Sealing after the commit, by the test (as the sequencer thread would), never by ``record`` itself."""
    monkeypatch.setattr(sequencer, "_seal_after_commit", lambda: None)
    with override_settings(AUDIT_SEAL_INLINE=False):
        yield


def _rich_event() -> AuditEvent:
    return record(
        action="referral.viewed",
        actor_type="api_client",
        actor_id=str(uuid.uuid4()),
        actor_label="api:Sistema de la Defensoría",
        actor_institution="DP",
        object_type="referral",
        object_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        institutions=["IOM"],
        outcome="denied",
        ip="2001:db8::7",
        request_id="req-ñ-1",
        # unsorted keys, nesting, non-ASCII, a float, a null: the encoding's canonical JSON, not jsonb's
        detail={"z": 1, "a": {"y": [1, 2.5, None], "b": "ü"}, "ñ": True},
    )


def test_record_passes_the_fields_in_the_models_order():
    """``record()`` builds its event positionally in this order (the chain's row: id, the hashed fields,
    hash)."""
    assert tuple(COLUMNS) == ROW_FIELDS


def test_the_queue_row_and_the_sealed_event_hold_what_was_recorded():
    event = _rich_event()
    queued = AuditQueue.objects.get()
    assert queued.event_id == event.id
    for name in RECORDED[1:]:
        assert getattr(queued, name) == getattr(event, name), name
    assert event.institutions == ",DP,IOM," and event.at.tzinfo is not None

    assert sequencer.seal_pending() == 1
    sealed = AuditEvent.objects.get()
    for name in RECORDED:
        assert getattr(sealed, name) == getattr(event, name), name
    assert (sealed.sequence, sealed.prev_hash) == (1, "0" * 64)
    assert sealed.hash == event_hash(sealed)  # the hash of the text read equals the model's
    assert AuditChainHead.objects.get(id=1).last_hash == sealed.hash
    assert not AuditQueue.objects.exists()
    assert verify_chain().ok


def test_events_of_other_centuries_are_hashed_as_the_verifier_hashes_them():
    """``at`` is formatted by the database for years 1000–9999 and by Python otherwise."""
    moments = (
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    for at in moments:
        sequencer.enqueue([AuditEvent(id=uuid.uuid4(), at=at, actor_type="system", action="test.at")])
    assert sequencer.seal_pending() == 2
    assert [e.at for e in AuditEvent.objects.order_by("sequence")][0].year == 999
    assert verify_chain().ok


def test_a_batch_larger_than_one_insert_is_queued_and_sealed_in_order():
    with transaction.atomic(), batch():
        for n in range(sequencer._ROWS_PER_INSERT + 5):  # two INSERTs: 40 rows, then 5
            record(actor_type="system", action="test.many", detail={"n": n})
    assert sequencer.seal_pending(limit=30) == 45
    details = list(AuditEvent.objects.order_by("sequence").values_list("detail", flat=True))
    assert details == [{"n": n} for n in range(45)]
    assert verify_chain().ok


def test_an_append_after_the_connection_was_closed_uses_the_new_one():
    record(actor_type="system", action="test.before")
    connection.close()
    record(actor_type="system", action="test.after")
    assert sequencer.seal_pending() == 2
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == [
        "test.before",
        "test.after",
    ]


def test_a_forged_duplicate_in_the_queue_stops_the_sealing_and_seals_nothing():
    """The queue's ``event_id`` is not unique any more (migration 0009): a row forged with the id of a queued
    event is refused at sealing by the chain's primary key — the batch rolls back, both rows stay queued,
    and ``verify_audit`` reports the stalled queue after ``STALE_AFTER``."""
    event = record(actor_type="system", action="test.real")
    sequencer.enqueue([AuditEvent(id=event.id, at=event.at, actor_type="system", action="test.forged")])
    with pytest.raises((IntegrityError, DatabaseError)):
        sequencer.seal_pending()
    assert not AuditEvent.objects.exists()
    assert AuditQueue.objects.count() == 2
    assert AuditChainHead.objects.filter(sequence__gt=0).count() == 0


# --- PostgreSQL: the statement bound on the server, prepared; the server's copy ---------------------------


def _prepared_queue_inserts() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ['INSERT INTO "audit_auditqueue"%'],
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_the_queue_insert_is_prepared_after_a_few_runs_on_a_connection():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements: PostgreSQL")
    connection.close()
    record(actor_type="system", action="test.first")
    assert _prepared_queue_inserts() == 0
    for _ in range(6):
        record(actor_type="system", action="test.again")
    assert _prepared_queue_inserts() == 1
    # While Django logs the queries (DEBUG, CaptureQueriesContext) the statement runs unprepared, so that its
    # text is logged (Django logs a prepared one's as None).
    with CaptureQueriesContext(connection) as logged:
        record(actor_type="system", action="test.logged")
    statements = [q["sql"].split()[:3] for q in logged.captured_queries]
    assert statements == [["INSERT", "INTO", '"audit_auditqueue"']]
    assert sequencer.seal_pending() == 8 and verify_chain().ok


@pytest.mark.postgres
def test_without_prepared_statements_the_append_works_the_same():
    """``DATABASE_PREPARED_STATEMENTS=false`` (a pooler that keeps none): psycopg's threshold is None."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements: PostgreSQL")
    connection.close()
    connection.ensure_connection()
    connection.connection.prepare_threshold = None
    try:
        for _ in range(8):
            record(actor_type="system", action="test.unprepared")
        assert _prepared_queue_inserts() == 0
    finally:
        connection.close()
    assert sequencer.seal_pending() == 8 and verify_chain().ok


@pytest.mark.postgres
def test_a_queue_row_gone_while_it_is_sealed_seals_nothing(monkeypatch):
    """The server copies the queue rows it was told of: if one of them is not there, the batch is refused."""
    if connection.vendor != "postgresql":
        pytest.skip("the server's copy: PostgreSQL")
    record(actor_type="system", action="test.real")
    read = sequencer._queued

    def with_a_ghost(limit):
        rows = read(limit)
        ghost_values = dict(rows[0][1], id=str(uuid.uuid4()))
        return [*rows, (rows[0][0] + 10**9, ghost_values)]

    monkeypatch.setattr(sequencer, "_queued", with_a_ghost)
    with pytest.raises(RuntimeError, match="vanished"):
        sequencer.seal_pending()
    monkeypatch.setattr(sequencer, "_queued", read)
    assert not AuditEvent.objects.exists() and AuditQueue.objects.count() == 1
    assert sequencer.seal_pending() == 1 and verify_chain().ok
