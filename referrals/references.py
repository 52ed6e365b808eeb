"""Human references, ``IOM-2026-000123`` (cases) and ``IOM-R-2026-000045`` (referrals): nothing personal.

The numbers come from ``ReferenceCounter`` (one row per institution, kind and year), advanced by one upsert
statement. On PostgreSQL that statement runs on a connection of its own, in its own transaction (autocommit):
the counter row is locked only for that statement, not until the create that asked for the number commits,
so the creates of one institution no longer queue behind each other's transactions. The price: a create
that fails after taking its number leaves that number unused — references are unique and increasing within
an institution, kind and year, but may have gaps (docs/api.md). On SQLite (one writer at a time anyway) the
statement runs in the caller's transaction, as before: no gaps there.
"""

from __future__ import annotations

import contextlib
import os
import threading

from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.utils import timezone

from .models import ReferenceCounter

_ADVANCE = (
    "INSERT INTO {table} (institution_id, kind, year, value) VALUES (%s, %s, %s, 1) "
    "ON CONFLICT (institution_id, kind, year) DO UPDATE SET value = {table}.value + 1 RETURNING value"
)


def next_reference(institution, kind: str) -> str:
    """The next reference of ``institution`` for ``kind`` (``"case"`` or ``"ref"``) in the current year."""
    year = timezone.now().year
    value = next_value(institution.pk, kind, year)
    infix = "" if kind == "case" else "R-"
    return f"{institution.code}-{infix}{year}-{value:06d}"


def next_value(institution_id: int, kind: str, year: int) -> int:
    """Add one to the year's counter (created at 1 on first use) and return it, in one statement."""
    if not uses_own_transaction():
        return _advance(connection, institution_id, kind, year)
    return _counter_connection.advance(institution_id, kind, year)


def uses_own_transaction() -> bool:
    """True where a number is taken in a transaction of its own (PostgreSQL), so it can be left unused."""
    return connection.vendor == "postgresql"


def _advance(conn, institution_id: int, kind: str, year: int) -> int:
    table = conn.ops.quote_name(ReferenceCounter._meta.db_table)
    with conn.cursor() as cursor:
        cursor.execute(_ADVANCE.format(table=table), [institution_id, kind, year])
        return int(cursor.fetchone()[0])


class _CounterConnection:
    """One extra connection per process, used by one thread at a time, in autocommit: each advance is its own
    transaction. Opened on first use, closed like Django's own connections (at the end of a request when
    unusable or older than ``CONN_MAX_AGE``) and by :func:`close_counter_connection`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._conn = None
        self._pid = None

    def advance(self, institution_id: int, kind: str, year: int) -> int:
        with self._lock:
            conn = self._connection()
            try:
                return _advance(conn, institution_id, kind, year)
            except DatabaseError:
                self._close()  # the next number is taken on a fresh connection
                raise

    def _connection(self):
        if self._conn is not None and self._pid != os.getpid():
            self._conn = None  # inherited through fork: the parent's socket, never ours to use or close
        if self._conn is not None:
            self._conn.close_if_unusable_or_obsolete()
            if self._conn.connection is None:
                self._conn = None
        if self._conn is None:
            conn = connections.create_connection(DEFAULT_DB_ALIAS)
            conn.inc_thread_sharing()  # used by every thread of the process, one at a time (the lock)
            conn.ensure_connection()
            with conn.cursor() as cursor:
                # Safe without waiting for the disk: the create that uses the number commits later and
                # synchronously, which flushes the write-ahead log up to and past this increment.
                cursor.execute("SET synchronous_commit TO off")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def close_if_obsolete(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close_if_unusable_or_obsolete()

    def _close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            with contextlib.suppress(DatabaseError):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()


_counter_connection = _CounterConnection()


def close_counter_connection() -> None:
    """Close this process's counter connection (reopened on next use): before a database is dropped."""
    _counter_connection.close()


def _close_if_obsolete(**kwargs) -> None:
    _counter_connection.close_if_obsolete()


request_started.connect(_close_if_obsolete)
request_finished.connect(_close_if_obsolete)
