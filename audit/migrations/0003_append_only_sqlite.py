"""SQLite: the database itself refuses UPDATE and DELETE on the audit table (row triggers).

``manage.py flush`` (used by the test framework between transactional tests) lifts these two triggers
for the duration of the flush only: see ``audit/management/commands/flush.py``.
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
