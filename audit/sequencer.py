"""The sequencer: seals queued events into the hash chain in batches (issue 21, contract §7.3).

A request's transaction only INSERTs its events into ``audit_auditqueue`` (``enqueue``): it shares no row
with any other request, so no request ever waits for another's audit. ``seal_pending`` — one sealer at a
time — moves the committed queue rows, in arrival order, into ``audit_auditevent``: it gives each its
``sequence`` (the head's + 1, without gaps), ``prev_hash`` and ``hash`` (the same HMAC chain as before,
``at`` kept as recorded), inserts them, moves the chain head, and deletes the queue rows it sealed — all in
one transaction, so an event is either still queued or sealed, never both and never neither. The queue's
triggers refuse any UPDATE and the DELETE of a row whose event is not sealed (migration 0008).

Nothing is skipped, without a watermark: a sealed row leaves the queue, so a row that commits late (a
long transaction, an arrival number smaller than one already sealed) is simply still there for the next
batch. A crash between a request's commit and its sealing loses nothing either: the row waits in the queue
for the next run of any sequencer.

Who seals (``docs/audit.md``, "Appends that do not queue behind each other"):

* every serving process (gunicorn, runserver, ``scripts/run``) runs a sequencer thread that wakes every
  ``AUDIT_SEQUENCER_INTERVAL`` seconds (0.2); on PostgreSQL a transaction-level advisory lock lets one of
  them seal while the others skip their turn (they never wait);
* a process without that thread (a Celery worker, a management command) seals right after the commit of
  the transaction that queued events (``transaction.on_commit``), waiting for a running sealer if any;
* beat's ``audit-seal-pending`` (and the embedded relay) seals what is left, should every other sealer be
  down; ``verify_audit`` reports queued events older than ``STALE_AFTER`` (``queue_stalled``);
* the test settings seal inline (``AUDIT_SEAL_INLINE``): inside the recording transaction, right after the
  queue INSERT, through this same code — so a test reads its events at once, and the chain head's lock then
  serializes writers as in issue 14's design.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from contextlib import nullcontext
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections, models, transaction

from .chain import GENESIS_HASH, HASHED_FIELDS, pg_text_columns, pg_text_values, values_hash
from .models import AuditChainHead, AuditEvent, AuditQueue

logger = logging.getLogger(__name__)

#: Queue rows sealed per transaction (a batch); ``seal_pending`` loops until the queue is drained.
BATCH = 1000
#: Rows per INSERT / ids per DELETE: well under SQLite's limit of bound parameters, whatever its build.
_ROWS_PER_INSERT = 40
_IDS_PER_DELETE = 500
#: The advisory lock key of the sealer on PostgreSQL (any constant; "audit seq" in ASCII).
ADVISORY_KEY = 0x6175646974736571 & 0x7FFFFFFFFFFFFFFF
#: ``verify_audit`` fails when a queued event is older than this (the sequencer is not running).
STALE_AFTER = timedelta(seconds=60)

#: The event's columns the queue holds: the hashed ones but ``sequence`` and ``prev_hash`` (the sealer's), in
#: the chain's order.
QUEUED_FIELDS = tuple(name for name in HASHED_FIELDS if name not in ("sequence", "prev_hash"))
# ``_pg_row`` writes them out in this order.
assert HASHED_FIELDS[1:-1] == QUEUED_FIELDS

_process = {"thread": None}


def inline() -> bool:
    return bool(getattr(settings, "AUDIT_SEAL_INLINE", False))


def sequencer_thread_running() -> bool:
    thread = _process["thread"]
    return thread is not None and thread.is_alive()


# --- queueing (the request's side) -------------------------------------------------------------------


def enqueue(events: list[AuditEvent]) -> None:
    """INSERT the events into the queue, in plain SQL built once (the ORM's compiler would double the cost of
    auditing a read), inside the caller's transaction; then have them sealed: at once when sealing is
    inline, else after the commit unless this process runs the sequencer thread.

    Every audited request runs this: on PostgreSQL the statement is bound on the server (its text the same
    whatever the values, which travel apart from it: no literals to quote here or to parse there) and, after
    a few runs on a connection, prepared (``prepare_threshold``, config/settings/base.py); the connection is
    looked up once (docs/performance.md, "The append's CPU")."""
    db = connections[DEFAULT_DB_ALIAS]
    seal_inline = inline()
    # One INSERT outside any transaction is one by itself (autocommit): no BEGIN and COMMIT around it, two
    # round trips of every audited read of a referral (docs/performance.md, issue 20).
    alone = (
        db.get_autocommit() and not db.in_atomic_block and len(events) <= _ROWS_PER_INSERT and not seal_inline
    )
    postgresql = db.vendor == "postgresql"
    with nullcontext() if alone else transaction.atomic(using=db.alias, savepoint=False):
        with nullcontext(_bound_cursor(db)) if postgresql else db.cursor() as cursor:
            for start in range(0, len(events), _ROWS_PER_INSERT):
                chunk = events[start : start + _ROWS_PER_INSERT]
                if postgresql:
                    values = [value for event in chunk for value in _pg_row(event)]
                else:
                    values = [value for event in chunk for value in _prepared_row(event, db)]
                cursor.execute(_queue_insert(db, len(chunk)), values)
        if seal_inline:
            seal_pending(objects={e.id: e for e in events})
    if not seal_inline and not sequencer_thread_running():
        transaction.on_commit(_seal_after_commit, using=db.alias)


#: The queue's INSERT of n rows, per database vendor: built once (``_queue_insert``).
_QUEUE_INSERTS: dict[tuple[str, int], str] = {}


def _queue_fields() -> list:
    return [AuditQueue._meta.get_field("event_id"), *(AuditQueue._meta.get_field(n) for n in QUEUED_FIELDS)]


def _queue_insert(db, rows: int) -> str:
    key = (db.vendor, rows)
    sql = _QUEUE_INSERTS.get(key)
    if sql is None:
        ops = db.ops
        table = ops.quote_name(AuditQueue._meta.db_table)
        columns = ", ".join(ops.quote_name(f.column) for f in _queue_fields())
        row = "(" + ", ".join(["%s"] * (1 + len(QUEUED_FIELDS))) + ")"
        sql = _QUEUE_INSERTS[key] = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * rows)}"  # noqa: S608
    return sql


def _prepared_row(event: AuditEvent, db) -> list:
    """The row as Django prepares it for any database (``get_db_prep_save``)."""
    return [
        f.get_db_prep_save(event.id if f.name == "event_id" else getattr(event, f.attname), db)
        for f in _queue_fields()
    ]


def _pg_row(event: AuditEvent) -> tuple:
    """The row as psycopg takes it as it is: the UUID, the aware datetime and the texts adapted natively,
    ``detail`` as its JSON text (sent untyped, the column makes it ``jsonb``: what the JSONField would
    store)."""
    return (
        event.id,
        event.at,
        event.actor_type,
        event.actor_id,
        event.actor_label,
        event.actor_institution,
        event.action,
        event.object_type,
        event.object_id,
        event.case_id,
        event.institutions,
        event.ip,
        event.request_id,
        event.outcome,
        json.dumps(event.detail),
    )


class _BoundCursor(psycopg.Cursor):
    """psycopg's cursor with server-side binding, whose statements are not prepared while Django logs the
    queries (``DEBUG``, ``CaptureQueriesContext``): Django logs a prepared statement's text as None."""

    logged = False

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=False if self.logged else prepare, binary=binary)


#: One such cursor per connection (they belong to one thread each, as Django's do): made once, not on every
#: audited request.
_bound_cursors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _bound_cursor(db):
    """A cursor with server-side binding on ``db`` (PostgreSQL; Django's own bind on the client), wrapped
    as ``db.cursor()`` wraps its own: errors translated, queries logged when they are, the connection
    checked and opened first. The wrapper is used without ``with``: closing it would close the cached
    cursor."""
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = _bound_cursors.get(db.connection)
    if raw is None or raw.closed:
        raw = _bound_cursors[db.connection] = _BoundCursor(db.connection)
    raw.logged = db.queries_logged
    return db.make_debug_cursor(raw) if raw.logged else db.make_cursor(raw)


def _seal_after_commit() -> None:
    try:
        seal_pending(wait=True)
    except Exception as exc:  # noqa: BLE001 — the events stay queued; the next sequencer run seals them
        logger.warning("audit sequencer: sealing after commit failed (%s)", type(exc).__name__)


# --- sealing (the sequencer's side) ------------------------------------------------------------------


def _take_head() -> tuple[int, str]:
    """Lock the chain head (a no-op UPDATE: the row lock on PostgreSQL, the write lock on SQLite, taken
    before the queue is read) and return its sequence and hash."""
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET sequence = sequence WHERE id = 1 RETURNING sequence, last_hash")  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        AuditChainHead.objects.get_or_create(id=1, defaults={"sequence": 0, "last_hash": GENESIS_HASH})
        return _take_head()
    return int(row[0]), row[1]


def _lock(wait: bool) -> bool:
    """PostgreSQL: one sealer at a time (a transaction-level advisory lock); ``wait=False`` skips the turn
    when another holds it. SQLite has one writer anyway (the head's UPDATE takes the write lock)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_KEY])
        return bool(cursor.fetchone()[0])


def _insert_events(events: list[AuditEvent], last_sequence: int) -> None:
    """INSERT the sealed events and move the head, in plain SQL: on PostgreSQL one statement for the whole
    batch, an array per column (``unnest``: no per-row placeholders to parse); elsewhere multi-row INSERTs."""
    fields = AuditEvent._meta.concrete_fields
    ops = connection.ops
    table = ops.quote_name(AuditEvent._meta.db_table)
    head = ops.quote_name(AuditChainHead._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
            values = [
                [getattr(e, f.attname) for e in events]
                if isinstance(f, models.CharField | models.BigIntegerField)  # passed as they are
                else [f.get_db_prep_save(getattr(e, f.attname), connection) for e in events]
                for f in fields
            ]
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})", values)  # noqa: S608
        else:
            row = "(" + ", ".join(["%s"] * len(fields)) + ")"
            for start in range(0, len(events), _ROWS_PER_INSERT):
                chunk = events[start : start + _ROWS_PER_INSERT]
                values = [
                    f.get_db_prep_save(getattr(e, f.attname), connection) for e in chunk for f in fields
                ]
                rows = ", ".join([row] * len(chunk))
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {rows}", values)  # noqa: S608
        cursor.execute(
            f"UPDATE {head} SET sequence = %s, last_hash = %s WHERE id = 1",  # noqa: S608
            [last_sequence, events[-1].hash],
        )


def _delete_sealed(queue_ids: list[int]) -> None:
    table = connection.ops.quote_name(AuditQueue._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s::bigint[])", [queue_ids])  # noqa: S608
            return
        for start in range(0, len(queue_ids), _IDS_PER_DELETE):
            chunk = queue_ids[start : start + _IDS_PER_DELETE]
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"DELETE FROM {table} WHERE id IN ({placeholders})", chunk)  # noqa: S608


#: The queue's rows in arrival order, their columns as the canonical encoding takes them
#: (``audit.chain.pg_text_columns``, as ``audit.verification`` reads the sealed events): no UUID, datetime or
#: dict is built for an event the sequencer only hashes.
_PG_COLUMNS = pg_text_columns(("id", *QUEUED_FIELDS), id_column="event_id")
# fixed column expressions; the only value is a parameter
_PG_QUEUED = f'SELECT id, {_PG_COLUMNS} FROM "audit_auditqueue" ORDER BY id LIMIT %s'  # noqa: S608
#: The sealed events, copied from their queue rows by the server: Python sends only what it computed — the
#: queue ids in sealing order, each event's ``prev_hash`` and ``hash`` — three arrays, each as one text.
#: The ``sequence`` is the head's + the row's position in those arrays.
_PG_SEAL = (  # noqa: S608 — fixed column names; every value is a parameter
    'INSERT INTO "audit_auditevent" (id, sequence, {columns}, prev_hash, hash) '
    "SELECT q.event_id, %s + s.n, {queued}, s.prev_hash, s.hash "
    "FROM unnest(%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY AS s(queue_id, prev_hash, hash, n) "
    'JOIN "audit_auditqueue" q ON q.id = s.queue_id'
).format(columns=", ".join(QUEUED_FIELDS), queued=", ".join(f"q.{name}" for name in QUEUED_FIELDS))


def _queued(limit: int) -> list[tuple[int, dict]]:
    """The first ``limit`` committed queue rows in arrival order → (queue id, the event's values by name)."""
    names = ("id", *QUEUED_FIELDS)
    if connection.vendor != "postgresql":
        rows = AuditQueue.objects.order_by("id").values_list("id", "event_id", *QUEUED_FIELDS)[:limit]
        return [(row[0], dict(zip(names, row[1:], strict=True))) for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(_PG_QUEUED, [limit])
        return [(row[0], pg_text_values(names, row[1:])) for row in cursor.fetchall()]


def _array(values) -> str:
    """A PostgreSQL array literal of integers or hex digests (nothing to quote): one text parameter instead of
    a list that the driver would dump element by element."""
    return "{" + ",".join(map(str, values)) + "}"


def _seal_postgresql(queue_ids: list[int], last: int, prev_hashes: list[str], hashes: list[str]) -> None:
    """INSERT the sealed events (copied from their queue rows), move the head, delete the queue rows."""
    ids = _array(queue_ids)
    with connection.cursor() as cursor:
        cursor.execute(_PG_SEAL, [last, ids, _array(prev_hashes), _array(hashes)])
        if cursor.rowcount != len(queue_ids):  # a queue row gone since it was read: seal nothing
            raise RuntimeError("audit sequencer: a queued event vanished while it was being sealed")
        cursor.execute(
            'UPDATE "audit_auditchainhead" SET sequence = %s, last_hash = %s WHERE id = 1',
            [last + len(queue_ids), hashes[-1]],
        )
        cursor.execute('DELETE FROM "audit_auditqueue" WHERE id = ANY(%s::bigint[])', [ids])


def _seal_batch(*, limit: int, wait: bool, objects: dict | None) -> int | None:
    """Seal up to ``limit`` queued events in the current transaction → how many (None: another sealer
    holds the lock and ``wait`` is false)."""
    if not _lock(wait):
        return None
    last, prev_hash = _take_head()
    queued = _queued(limit)
    if not queued:
        return 0
    prev_hashes, hashes = [], []
    for sequence, (_queue_id, values) in enumerate(queued, start=last + 1):
        values["sequence"] = sequence
        values["prev_hash"] = prev_hash
        prev_hashes.append(prev_hash)
        prev_hash = values_hash(values)
        hashes.append(prev_hash)
    if connection.vendor == "postgresql":
        _seal_postgresql([queue_id for queue_id, _values in queued], last, prev_hashes, hashes)
    else:
        events = []
        for (_queue_id, values), hash_ in zip(queued, hashes, strict=True):
            event = AuditEvent(**values)
            event.hash = hash_
            events.append(event)
        _insert_events(events, last + len(events))
        _delete_sealed([queue_id for queue_id, _values in queued])
    if objects:  # inline sealing: the recorder's events learn their place in the chain
        by_id = {str(event_id): event for event_id, event in objects.items()}
        for (_queue_id, values), hash_ in zip(queued, hashes, strict=True):
            event = by_id.get(str(values["id"]))
            if event is not None:
                event.sequence, event.prev_hash, event.hash = values["sequence"], values["prev_hash"], hash_
                event._state.adding = False
                event._state.db = connection.alias
    return len(queued)


def seal_pending(*, wait: bool = False, limit: int = BATCH, objects: dict | None = None) -> int:
    """Seal every queued event that this transaction can see, in batches of ``limit`` → how many.

    Inside a transaction (inline sealing) it joins it; else each batch is a transaction of its own.
    ``wait``: on PostgreSQL, wait for a running sealer instead of leaving the turn to it. ``objects``:
    event id → the ``AuditEvent`` the recorder built, filled in with its sequence and hashes.
    """
    total = 0
    while True:
        joined = connection.in_atomic_block  # inline: inside the recording transaction
        if not joined and not AuditQueue.objects.exists():
            return total  # idle: one indexed read, no transaction, no lock
        with transaction.atomic(savepoint=False):
            sealed = _seal_batch(limit=limit, wait=wait or joined, objects=objects)
        if not sealed:
            return total
        total += sealed
        if sealed < limit:
            return total


def oldest_queued_age() -> timedelta | None:
    """How long the oldest queued (unsealed) event has waited, by its recorded ``at``; None when none."""
    at = AuditQueue.objects.order_by("id").values_list("at", flat=True).first()
    if at is None:
        return None
    from django.utils import timezone

    return timezone.now() - at


# --- the sequencer thread ----------------------------------------------------------------------------


def _loop(interval: float, stop: threading.Event) -> None:
    """Seal at a fixed pace: a run every ``interval`` seconds, counted from the start of the previous one
    (a busy run's own time is not added to the next wait)."""
    next_run = time.monotonic() + interval
    try:
        while not stop.wait(max(0.0, next_run - time.monotonic())):
            next_run = time.monotonic() + interval
            close_old_connections()
            try:
                seal_pending()
            except Exception as exc:  # noqa: BLE001 — keep sequencing; the queue keeps the events
                logger.warning("audit sequencer: sealing failed (%s)", type(exc).__name__)
    finally:
        connections.close_all()


def start_sequencer_thread(interval: float | None = None) -> tuple[threading.Thread, threading.Event]:
    """Start a sequencer thread (daemon) sealing every ``interval`` seconds; returns it and its stop event."""
    if interval is None:
        interval = float(getattr(settings, "AUDIT_SEQUENCER_INTERVAL", 0.2))
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(interval, stop), name="audit-sequencer", daemon=True)
    thread.start()
    _process["thread"] = thread
    return thread, stop


def start_embedded_sequencer() -> bool:
    """Called by the serving entrypoints (``config/wsgi.py``, ``config/asgi.py``): one sequencer thread per
    serving process unless ``AUDIT_SEQUENCER_THREAD`` is false (the test settings) or sealing is inline."""
    if sequencer_thread_running() or inline() or not getattr(settings, "AUDIT_SEQUENCER_THREAD", True):
        return False
    start_sequencer_thread()
    logger.info("audit sequencer thread started")
    return True
