"""The test suite's ``flush`` (installed by the test and benchmark settings only, never in the product).

pytest-django empties every table after each transactional test with Django's ``flush``: ``TRUNCATE`` on
PostgreSQL (the audit table's row triggers do not fire on it), ``DELETE FROM`` on SQLite — which the audit
table's append-only triggers refuse, as they must in the product: there, ``manage.py flush`` is Django's
own and cannot empty the audit log on SQLite (docs/audit.md). For the test database only, this command
lifts the two SQLite triggers for the duration of Django's flush — their exact definitions are read from
``sqlite_master`` first and restored in a ``finally`` — so the table is append-only again before the
command returns, whatever happened. It overrides Django's command the documented way (an installed app's
command of the same name).
"""

from django.core.management.commands import flush
from django.db import connections

AUDIT_TABLES = ("audit_auditevent", "audit_auditqueue")


def sqlite_audit_triggers(connection) -> list[tuple[str, str]]:
    """The (name, CREATE TRIGGER statement) of every trigger on the audit tables (the log and its queue)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'trigger' AND tbl_name IN (%s, %s) ORDER BY name",
            list(AUDIT_TABLES),
        )
        return list(cursor.fetchall())


class Command(flush.Command):
    help = flush.Command.help + " (Tests: on SQLite, lifts the audit table's append-only triggers meanwhile.)"

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
