"""PostgreSQL: the database itself refuses UPDATE and DELETE on the audit table (row-level triggers).

Row-level triggers do not fire on TRUNCATE: the test framework's flush keeps working, and the
application's role must simply not hold TRUNCATE on the table (docs/audit.md gives the REVOKE).
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_auditevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
TRIGGER = (
    "CREATE TRIGGER audit_auditevent_append_only BEFORE UPDATE OR DELETE ON audit_auditevent "
    "FOR EACH ROW EXECUTE FUNCTION audit_auditevent_refuse_change()"
)


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent", params=None)
    schema_editor.execute(TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent", params=None)
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_auditevent_refuse_change()", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_only_sqlite")]
    operations = [migrations.RunPython(create_trigger, drop_trigger, elidable=False)]
