"""The queue of events not yet sealed (issue 21, contract §7.3), append-only in the database: no UPDATE,
and a DELETE only of a row whose event is already sealed in ``audit_auditevent`` (the sequencer deletes
the rows it sealed, in the sealing transaction). SQLite and PostgreSQL alike.
"""

from django.db import migrations, models

SQLITE_TRIGGERS = (
    (
        "audit_auditqueue_no_update",
        "CREATE TRIGGER audit_auditqueue_no_update BEFORE UPDATE ON audit_auditqueue "
        "BEGIN SELECT RAISE(ABORT, 'audit_auditqueue is append-only: UPDATE refused'); END",
    ),
    (
        "audit_auditqueue_no_delete",
        "CREATE TRIGGER audit_auditqueue_no_delete BEFORE DELETE ON audit_auditqueue "
        "WHEN NOT EXISTS (SELECT 1 FROM audit_auditevent WHERE id = OLD.event_id) "
        "BEGIN SELECT RAISE(ABORT, 'audit_auditqueue is append-only: DELETE of an unsealed event refused'); END",
    ),
)
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_auditqueue_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_auditevent WHERE id = OLD.event_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_auditqueue is append-only: % of an unsealed event refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
PG_TRIGGER = (
    "CREATE TRIGGER audit_auditqueue_append_only BEFORE UPDATE OR DELETE ON audit_auditqueue "
    "FOR EACH ROW EXECUTE FUNCTION audit_auditqueue_refuse_change()"
)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for name, sql in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
            schema_editor.execute(sql, params=None)
    elif vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION, params=None)
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditqueue_append_only ON audit_auditqueue", params=None)
        schema_editor.execute(PG_TRIGGER, params=None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for name, _sql in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
    elif vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditqueue_append_only ON audit_auditqueue", params=None)
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_auditqueue_refuse_change()", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0007_transparency_log'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditQueue',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('event_id', models.UUIDField(unique=True)),
                ('at', models.DateTimeField()),
                ('actor_type', models.CharField(max_length=16)),
                ('actor_id', models.CharField(blank=True, default='', max_length=64)),
                ('actor_label', models.CharField(blank=True, default='', max_length=160)),
                ('actor_institution', models.CharField(blank=True, default='', max_length=16)),
                ('action', models.CharField(max_length=64)),
                ('object_type', models.CharField(blank=True, default='', max_length=32)),
                ('object_id', models.CharField(blank=True, default='', max_length=64)),
                ('case_id', models.CharField(blank=True, default='', max_length=64)),
                ('institutions', models.CharField(blank=True, default='', max_length=255)),
                ('ip', models.CharField(blank=True, default='', max_length=64)),
                ('request_id', models.CharField(blank=True, default='', max_length=64)),
                ('outcome', models.CharField(default='success', max_length=16)),
                ('detail', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
