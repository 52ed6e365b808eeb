"""A user never moves to another institution (contract §7.1): the database refuses an UPDATE that changes
``accounts_user.institution_id``, whatever the door (a service, the Django admin, a queryset ``update``).

SQLite: a row trigger raising ABORT; PostgreSQL: a row trigger raising an integrity-constraint violation.
Both reach Django as ``IntegrityError``.
"""

from django.db import migrations

SQLITE = (
    "CREATE TRIGGER accounts_user_institution_fixed BEFORE UPDATE OF institution_id ON accounts_user "
    "FOR EACH ROW WHEN OLD.institution_id IS NOT NEW.institution_id "
    "BEGIN SELECT RAISE(ABORT, 'a user never moves to another institution'); END"
)
POSTGRESQL = (
    "CREATE OR REPLACE FUNCTION accounts_user_institution_fixed() RETURNS trigger AS $$ "
    "BEGIN "
    "IF OLD.institution_id IS DISTINCT FROM NEW.institution_id THEN "
    "RAISE EXCEPTION 'a user never moves to another institution' USING ERRCODE = '23000'; "
    "END IF; "
    "RETURN NEW; "
    "END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS accounts_user_institution_fixed ON accounts_user",
    "CREATE TRIGGER accounts_user_institution_fixed BEFORE UPDATE OF institution_id ON accounts_user "
    "FOR EACH ROW EXECUTE FUNCTION accounts_user_institution_fixed()",
)


def create_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS accounts_user_institution_fixed", params=None)
        schema_editor.execute(SQLITE, params=None)
    elif vendor == "postgresql":
        for sql in POSTGRESQL:
            schema_editor.execute(sql, params=None)


def drop_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS accounts_user_institution_fixed", params=None)
    elif vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS accounts_user_institution_fixed ON accounts_user", params=None)
        schema_editor.execute("DROP FUNCTION IF EXISTS accounts_user_institution_fixed()", params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_idempotency_key")]
    operations = [migrations.RunPython(create_trigger, drop_trigger, elidable=False)]
