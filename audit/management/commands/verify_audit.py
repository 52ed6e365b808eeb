"""``manage.py verify_audit``: re-compute the audit hash chain (contract §1, §6.3).

Exit 0 and a summary when intact; exit 1 and the id/sequence of the first bad event otherwise — also when a
signed checkpoint does not match (``--checkpoints FILE``: a partner's copy, JSON lines) and when the
database's append-only triggers are missing or disabled.

``--incremental`` verifies only what came after the last verified checkpoint (what the hourly job does);
``--segment FILE`` (repeatable, in order) verifies archived segments offline, without the database.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.archive import verify_segment
from audit.checkpoints import MalformedCheckpoint, parse
from audit.verification import verify_chain


def read_checkpoints(path: str) -> list[dict]:
    """A JSON-lines file of checkpoints as served; a malformed line is an error naming its number."""
    items = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    items.append(parse(json.loads(line)))
                except (ValueError, MalformedCheckpoint) as exc:
                    raise CommandError(
                        f"{path}, line {number}: not a checkpoint ({exc})", returncode=1
                    ) from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=1) from None
    return items


class Command(BaseCommand):
    help = (
        "Re-computes the audit hash chain, checks signed checkpoints and the append-only triggers; "
        "exit 1 names the first bad event."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints",
            metavar="FILE",
            help="JSON lines, each a checkpoint as served by /api/v1/audit/checkpoints/ (a partner's copy).",
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Verify only the events after the last verified checkpoint (the hourly job's pass).",
        )
        parser.add_argument(
            "--segment",
            action="append",
            metavar="FILE",
            help="An archived month (audit_archive); repeat for consecutive months, oldest first. "
            "Verified from the files alone.",
        )

    def handle(self, **options):
        outside = read_checkpoints(options["checkpoints"]) if options["checkpoints"] else []
        if options["segment"]:
            return self._segments(options["segment"], outside)
        result = verify_chain(incremental=options["incremental"], checkpoints=outside)
        self.stdout.write(result.summary())  # on stdout in both cases, for scripts that read one stream
        if not result.ok:
            raise CommandError(result.summary(), returncode=1)

    def _segments(self, paths, outside):
        previous = None
        for path in paths:
            check = verify_segment(Path(path), previous_hash=previous, outside=outside)
            self.stdout.write(check.summary())
            if not check.ok:
                raise CommandError(check.summary(), returncode=1)
            previous = check.last_hash
