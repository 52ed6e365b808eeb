"""SQLite: the database itself refuses UPDATE and DELETE on the audit table (row triggers).

Django's ``manage.py flush`` is refused by them (the audit log cannot be emptied); the test suite's flush
(``tests/flush_support``, installed by the test settings only) lifts them for the duration of its flush.
"""

from django.db import migrations

TRIGGERS = (
    (
        "audit_auditevent_no_update",
        "CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent "
        "BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only: UPDATE refused'); END",
    ),
    (
        "audit_auditevent_no_delete",
        "CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON audit_auditevent "
        "BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only: DELETE refused'); END",
    ),
)


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, sql in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
        schema_editor.execute(sql, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, _sql in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_head")]
    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
