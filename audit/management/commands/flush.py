"""``flush`` that still works on SQLite, where triggers make the audit table refuse DELETE.

Django's ``flush`` empties every table (the test framework runs it after each transactional test): with
``DELETE FROM`` on SQLite, ``TRUNCATE`` on PostgreSQL. PostgreSQL's append-only triggers are row-level and
do not fire on TRUNCATE, so nothing changes there. On SQLite the audit table's triggers are lifted for the
duration of the flush only — their exact definitions are read from ``sqlite_master`` first and restored in
a ``finally`` — so the table is append-only again before the command returns, whatever happened.

Flushing is the documented "destroy every row of every table" operation: it is not a way around the log,
it is the end of the database (and on SQLite, whoever can run it can also rewrite the file itself).
"""

from django.core.management.commands import flush
from django.db import connections

AUDIT_TABLE = "audit_auditevent"


def sqlite_audit_triggers(connection) -> list[tuple[str, str]]:
    """The (name, CREATE TRIGGER statement) of every trigger on the audit table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s ORDER BY name",
            [AUDIT_TABLE],
        )
        return list(cursor.fetchall())


class Command(flush.Command):
    help = flush.Command.help + " (On SQLite, lifts the audit table's append-only triggers during the flush.)"

    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        triggers = sqlite_audit_triggers(connection)
        with connection.cursor() as cursor:
            for name, _sql in triggers:
                cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                for name, sql in triggers:
                    cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
                    cursor.execute(sql)
