"""Issue 21: appends that do not queue behind each other — events are queued in the request's transaction
and sealed into the chain by the sequencer (audit/sequencer.py). The rest of the suite seals inline
(``AUDIT_SEAL_INLINE`` in the test settings); here sealing is asynchronous, as in production."""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, OperationalError, connection, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import sequencer
from audit.models import AuditChainHead, AuditEvent, AuditQueue
from audit.recorder import batch, record
from audit.verification import QUEUE_STALLED, TRIGGERS, append_only_triggers_ok, verify_chain

QUEUE_MIGRATION = importlib.import_module("audit.migrations.0008_audit_queue")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def asynchronous():
    with override_settings(AUDIT_SEAL_INLINE=False):
        yield


@pytest.fixture
def no_seal_after_commit(monkeypatch):
    """A process that dies right after its commit, before sealing: its events stay queued."""
    monkeypatch.setattr(sequencer, "_seal_after_commit", lambda: None)


def _sequences() -> list[int]:
    return list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))


def test_an_event_is_queued_with_the_transaction_and_sealed_after_its_commit():
    with transaction.atomic():
        event = record(actor_type="system", action="test.queued", institutions=["IOM"])
        assert AuditQueue.objects.filter(event_id=event.id).exists()
        assert not AuditEvent.objects.exists()  # nothing sealed (nor served) before the commit
    assert not AuditQueue.objects.exists()
    sealed = AuditEvent.objects.get(id=event.id)
    assert sealed.sequence == 1 and sealed.action == "test.queued" and sealed.institutions == ",IOM,"
    assert AuditChainHead.objects.get(id=1).sequence == 1
    assert verify_chain().ok


def test_an_event_outside_any_transaction_is_queued_by_its_insert_alone(no_seal_after_commit):
    """An audited read outside a transaction (the API's detail) queues its event with one statement, which
    commits by itself: no BEGIN and COMMIT around it, and another connection sees the row at once."""
    with CaptureQueriesContext(connection) as ctx:
        event = record(actor_type="system", action="test.alone")
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["INSERT"]
    seen = []

    def other_connection():
        try:
            seen.append(AuditQueue.objects.filter(event_id=event.id).exists())
        finally:
            connections.close_all()

    reader = threading.Thread(target=other_connection)
    reader.start()
    reader.join(10)
    assert seen == [True]
    assert sequencer.seal_pending() == 1 and verify_chain().ok


def test_a_rolled_back_transaction_queues_nothing_and_leaves_no_gap():
    record(actor_type="system", action="test.one")
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor_type="system", action="test.rolled_back")
        raise RuntimeError
    record(actor_type="system", action="test.two")
    assert not AuditQueue.objects.exists()
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.one", "test.two"]
    assert _sequences() == [1, 2]


def test_a_crash_between_commit_and_sealing_loses_nothing(no_seal_after_commit):
    record(actor_type="system", action="test.sealed")
    sequencer.seal_pending()
    with batch():
        for n in range(3):
            record(actor_type="system", action="test.crashed", detail={"n": n})
    assert AuditQueue.objects.count() == 3
    result = verify_chain()
    assert result.ok and result.last_sequence == 1  # the chain is over sealed events only
    assert sequencer.seal_pending() == 3  # the next sequencer run
    assert not AuditQueue.objects.exists()
    assert _sequences() == [1, 2, 3, 4]
    details = list(AuditEvent.objects.filter(action="test.crashed").values_list("detail", flat=True))
    assert details == [{"n": 0}, {"n": 1}, {"n": 2}]  # arrival order
    assert verify_chain().ok


def test_sealing_in_batches_keeps_the_chain_contiguous(no_seal_after_commit):
    with batch():
        for n in range(25):
            record(actor_type="system", action="test.many", detail={"n": n})
    assert sequencer.seal_pending(limit=10) == 25  # three transactions: 10, 10, 5
    assert _sequences() == list(range(1, 26))
    assert verify_chain().ok


def test_the_queue_is_append_only_in_the_database(no_seal_after_commit):
    record(actor_type="system", action="test.queued")
    row = AuditQueue.objects.get()
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        AuditQueue.objects.filter(pk=row.pk).update(action="test.forged")
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        AuditQueue.objects.filter(pk=row.pk).delete()  # not sealed yet: refused
    assert AuditQueue.objects.get().action == "test.queued"
    sequencer.seal_pending()  # sealing deletes it, in the same transaction as the event's INSERT
    assert not AuditQueue.objects.exists()
    assert AuditEvent.objects.get().id == row.event_id


def test_verify_audit_reports_a_queue_that_is_not_sealed(no_seal_after_commit):
    record(actor_type="system", action="test.sealed")
    sequencer.seal_pending()
    old = timezone.now() - sequencer.STALE_AFTER - timedelta(seconds=5)
    sequencer.enqueue([AuditEvent(at=old, actor_type="system", action="test.stuck", detail={})])
    result = verify_chain()
    assert not result.ok and result.reason == QUEUE_STALLED
    assert "not sealed" in result.summary()
    sequencer.seal_pending()
    assert verify_chain().ok


def test_dropped_queue_triggers_fail_the_verification():
    record(actor_type="system", action="test.event")
    assert append_only_triggers_ok()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_auditqueue_no_delete")
        else:
            cursor.execute("DROP TRIGGER audit_auditqueue_append_only ON audit_auditqueue")
    try:
        assert not append_only_triggers_ok()
        result = verify_chain()
        assert not result.ok and result.reason == TRIGGERS
    finally:
        with connection.schema_editor() as editor:
            QUEUE_MIGRATION.create_triggers(None, editor)
    assert append_only_triggers_ok()


def _beside_the_thread(query):
    """Run ``query`` beside the sequencer thread. The test database on SQLite is one in-memory database
    shared by the threads (shared cache), where a table another thread is writing answers "table is locked"
    at once instead of waiting as a file database does; such a read or write is simply tried again."""
    for _attempt in range(200):
        try:
            return query()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc):
                raise
            threading.Event().wait(0.005)
    return query()


def test_the_sequencer_thread_seals_within_a_second():
    thread, stop = sequencer.start_sequencer_thread(interval=0.05)
    try:
        assert sequencer.sequencer_thread_running()
        started = timezone.now()
        event = _beside_the_thread(lambda: record(actor_type="system", action="test.threaded"))
        while not _beside_the_thread(AuditEvent.objects.filter(id=event.id).exists):
            assert timezone.now() - started < timedelta(seconds=1), "not sealed within 1 s"
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=5)
        sequencer._process["thread"] = None
    assert verify_chain().ok


@pytest.mark.postgres
def test_a_transaction_that_commits_late_is_sealed_after_the_others_never_skipped(no_seal_after_commit):
    """Arrival numbers commit out of order on PostgreSQL: the slow transaction's event (a smaller arrival
    number) is still in the queue when the others are sealed, and is sealed by the next run."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL")
    queued, release = threading.Event(), threading.Event()

    def slow():
        try:
            with transaction.atomic():
                record(actor_type="system", action="test.slow")
                queued.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow)
    writer.start()
    assert queued.wait(10)
    record(actor_type="system", action="test.fast")
    assert sequencer.seal_pending() == 1
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.fast"]
    release.set()
    writer.join(10)
    assert sequencer.seal_pending() == 1
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == [
        "test.fast",
        "test.slow",
    ]
    assert verify_chain().ok


@pytest.mark.postgres
def test_a_running_sealer_makes_the_others_skip_their_turn(no_seal_after_commit):
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock: PostgreSQL")
    record(actor_type="system", action="test.queued")
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                assert sequencer._lock(wait=False)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    assert sequencer.seal_pending() == 0  # skipped: it never waits for the other sealer
    release.set()
    holder.join(10)
    assert sequencer.seal_pending() == 1
