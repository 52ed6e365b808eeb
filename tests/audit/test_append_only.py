"""The database itself refuses UPDATE and DELETE on the audit table, and transactional tests still work.

The unmarked tests run on whichever database the suite runs on (SQLite in the embedded pass); the
``postgres`` ones pin the same facts on PostgreSQL in CI's second pass.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditChainHead, AuditEvent
from audit.recorder import record
from audit.verification import verify_chain

from .conftest import raw, trigger_names

EXPECTED_TRIGGERS = {
    "sqlite": {"audit_auditevent_no_update", "audit_auditevent_no_delete"},
    "postgresql": {"audit_auditevent_append_only"},
}


def _refused(fn) -> str:
    """Run ``fn`` in a savepoint; it must raise a database error. Returns the message."""
    with pytest.raises(DatabaseError) as info, transaction.atomic():
        fn()
    return str(info.value)


def _assert_append_only():
    first = record(actor_type="system", action="test.one", institutions=["IOM"], detail={"n": 1})
    record(actor_type="system", action="test.two", institutions=["IOM"], detail={"n": 2})
    table = "audit_auditevent"

    messages = [
        _refused(lambda: raw(f"UPDATE {table} SET action = 'test.forged' WHERE id = %s", [first.id.hex])),
        _refused(lambda: raw(f"UPDATE {table} SET detail = '{{}}'")),
        _refused(lambda: raw(f"DELETE FROM {table} WHERE id = %s", [first.id.hex])),
        _refused(lambda: raw(f"DELETE FROM {table}")),
        _refused(lambda: AuditEvent.objects.filter(pk=first.pk).update(outcome="denied")),
        _refused(lambda: AuditEvent.objects.all().delete()),
        _refused(lambda: first.delete()),
    ]
    first.outcome = "denied"
    messages.append(_refused(lambda: first.save()))
    assert all("append-only" in m for m in messages), messages
    assert list(AuditEvent.objects.values_list("action", "outcome")) == [
        ("test.one", "success"),
        ("test.two", "success"),
    ]
    assert verify_chain().ok
    # Appending is still allowed, of course.
    record(actor_type="system", action="test.three", institutions=["IOM"])
    assert AuditEvent.objects.count() == 3


def test_update_and_delete_are_refused_by_the_database(db):
    assert trigger_names() == EXPECTED_TRIGGERS[connection.vendor]
    _assert_append_only()


@pytest.mark.postgres
def test_update_and_delete_are_refused_by_postgresql(db):
    assert connection.vendor == "postgresql"
    assert trigger_names() == EXPECTED_TRIGGERS["postgresql"]
    _assert_append_only()


@pytest.mark.postgres
def test_postgresql_refuses_with_insufficient_privilege(db):
    event = record(actor_type="system", action="test.one")
    with pytest.raises(DatabaseError) as info, transaction.atomic():
        raw("DELETE FROM audit_auditevent WHERE id = %s", [event.id])
    assert getattr(info.value.__cause__, "sqlstate", None) == "42501"


# Transactional tests: pytest-django flushes every table after each (DELETE on SQLite, TRUNCATE on
# PostgreSQL) with the test settings' flush (tests/flush_support: on SQLite it lifts the triggers meanwhile).
# The first writes audit rows; the ones after it must start from an empty, intact chain.


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_writes_audit_rows():
    for n in range(5):
        record(actor_type="system", action="test.transactional", institutions=["IOM"], detail={"n": n})
    assert AuditEvent.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_the_next_transactional_test_starts_from_a_flushed_append_only_table():
    assert AuditEvent.objects.count() == 0
    assert trigger_names() == EXPECTED_TRIGGERS[connection.vendor]  # the flush restored them
    event = record(actor_type="system", action="test.after_flush")
    assert event.sequence == 1 and verify_chain().ok
    with pytest.raises(DatabaseError):
        raw("DELETE FROM audit_auditevent")


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_table_and_leaves_it_append_only():
    record(actor_type="system", action="test.before_flush")
    call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.count() == 0 and not AuditChainHead.objects.exists()
    assert trigger_names() == EXPECTED_TRIGGERS[connection.vendor]
    event = record(actor_type="system", action="test.after_flush")
    assert event.sequence == 1
    with pytest.raises(DatabaseError):
        raw("UPDATE audit_auditevent SET action = 'test.forged'")
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_failed_flush_still_restores_the_triggers(monkeypatch):
    from django.core.management.commands import flush

    def broken(self, **options):
        raise RuntimeError("flush interrupted")

    monkeypatch.setattr(flush.Command, "handle", broken)
    with pytest.raises(RuntimeError):
        call_command("flush", interactive=False, verbosity=0)
    monkeypatch.undo()
    assert trigger_names() == EXPECTED_TRIGGERS[connection.vendor]


@pytest.mark.postgres
def test_the_documented_grants_leave_the_app_role_append_only(db):
    """The REVOKE/GRANT block of docs/audit.md, applied to a throwaway role (rolled back with the test)."""
    import re
    import uuid
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    block = re.search(r"```sql\n(.*?)```", doc, re.S).group(1)
    role = f"audit_check_{uuid.uuid4().hex[:8]}"
    statements = [
        line.split("--")[0].strip().replace("rcm_app", role)
        for line in block.splitlines()
        if line.startswith(("GRANT", "REVOKE")) and "ON DATABASE" not in line
    ]
    assert len(statements) >= 8
    record(actor_type="system", action="test.one")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role}")
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(f"SET ROLE {role}")
        try:
            record(actor_type="system", action="test.as_app_role")  # appending works
            for sql in (
                "UPDATE audit_auditevent SET action = 'test.forged'",
                "DELETE FROM audit_auditevent",
                "TRUNCATE audit_auditevent",
                "DROP TRIGGER audit_auditevent_append_only ON audit_auditevent",
            ):
                with pytest.raises(DatabaseError) as info, transaction.atomic():
                    cursor.execute(sql)
                assert "permission denied" in str(info.value) or "must be owner" in str(info.value)
        finally:
            cursor.execute("RESET ROLE")
    assert verify_chain().ok


PRODUCT_FLUSH = """
from django.core.management import call_command, get_commands
from audit.models import AuditEvent
from audit.recorder import record
call_command("migrate", verbosity=0)
record(actor_type="system", action="test.before_flush")
print("flush command of:", get_commands()["flush"])
try:
    call_command("flush", interactive=False, verbosity=0)
except Exception as exc:
    print("flush refused:", type(exc).__name__, exc.__cause__)
print("audit rows:", AuditEvent.objects.count())
"""


def test_the_products_flush_is_djangos_own_and_cannot_empty_the_audit_log_on_sqlite(tmp_path):
    """With the product's settings (no test app), ``manage.py flush`` is Django's own command, and on SQLite
    the append-only triggers refuse it: the audit rows stay. (On PostgreSQL the application's role may not
    TRUNCATE: test_the_documented_grants_leave_the_app_role_append_only.)"""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        VAR_DIR=str(tmp_path / "var"),
        NOTIFICATIONS_RELAY_THREAD="false",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PRODUCT_FLUSH],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "flush command of: django.core" in result.stdout
    assert "flush refused:" in result.stdout and "append-only" in result.stdout, result.stdout
    assert "audit rows: 1" in result.stdout
