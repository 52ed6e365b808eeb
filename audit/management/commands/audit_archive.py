"""``manage.py audit_archive --before YYYY-MM [--dir DIR]``: write every closed month before YYYY-MM as a
JSON-lines segment with its checkpoints (``audit.archive``), then verify each file as written.

The rows stay in the database (the table is append-only; see docs/audit.md for why the log is not
partitioned); the segments are what an auditor or a court can verify offline with
``verify_audit --segment``. Re-running rewrites the same files identically (plus any newer checkpoint).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.archive import closed_months, parse_month, verify_segment, write_segment


class Command(BaseCommand):
    help = "Writes closed months of the audit log as verifiable JSON-lines segments."

    def add_arguments(self, parser):
        parser.add_argument(
            "--before", required=True, metavar="YYYY-MM", help="Archive the months before this one."
        )
        parser.add_argument(
            "--dir", default=None, help="Where to write the segments (default: var/audit-archive/)."
        )

    def handle(self, **options):
        try:
            before = parse_month(options["before"])
            months = closed_months(before, timezone.now())
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        directory = Path(options["dir"] or Path(settings.VAR_DIR) / "audit-archive")
        previous = None
        written = 0
        for month in months:
            done = write_segment(directory, month)
            if done is None:
                continue
            path, events = done
            check = verify_segment(path, previous_hash=previous)
            if not check.ok:
                raise CommandError(check.summary(), returncode=1)
            previous = check.last_hash
            written += 1
            self.stdout.write(f"{path}: {events} events, {check.checkpoints} checkpoints, verified")
        self.stdout.write(f"{written} segment(s) written to {directory}")
