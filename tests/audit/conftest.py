"""Fixtures of the audit suites: a chain of events, auditors (API clients with audit:read) of each
institution, and triggers."""

from __future__ import annotations

import importlib
from contextlib import contextmanager

import pytest
from django.db import connection

from audit.recorder import record

SQLITE = importlib.import_module("audit.migrations.0003_append_only_sqlite")
POSTGRES = importlib.import_module("audit.migrations.0004_append_only_postgresql")


@pytest.fixture
def chain(db):
    """Ten events, as the application writes them (``test_checkpoints`` has its own five)."""
    return [
        record(actor_type="system", action="test.event", institutions=["IOM", "DP"], detail={"n": n})
        for n in range(10)
    ]


@pytest.fixture
def auditor(api_as):
    """``auditor(institution)`` → an APIClient of that institution's system with ``audit:read`` only."""

    def make(institution):
        return api_as(institution, scopes=["audit:read"])

    return make


def trigger_names(conn=connection) -> set[str]:
    """The names of the triggers on the audit table, whatever the database."""
    with conn.cursor() as cursor:
        if conn.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_auditevent'"
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger "
                "WHERE tgrelid = 'audit_auditevent'::regclass AND NOT tgisinternal"
            )
        return {row[0] for row in cursor.fetchall()}


@contextmanager
def triggers_dropped():
    """Tamper like someone with DDL rights would: drop the append-only triggers by hand, then restore them."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name, _sql in SQLITE.TRIGGERS:
                cursor.execute(f"DROP TRIGGER {name}")
        else:
            cursor.execute("DROP TRIGGER audit_auditevent_append_only ON audit_auditevent")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                for name, sql in SQLITE.TRIGGERS:
                    cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                    cursor.execute(sql)
            else:
                cursor.execute("DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent")
                cursor.execute(POSTGRES.TRIGGER)


def raw(sql: str, params=()) -> None:
    """Plain SQL behind the ORM (table and column names are the contract's)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
