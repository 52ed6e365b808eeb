"""``manage.py match_backfill``: compute the keyed matching indexes of existing cases.

Resumable: each batch is committed on its own, and a case whose profile was computed with the current
``BLIND_INDEX_KEY`` is skipped, so an interrupted run is continued by running it again. ``--force``
recomputes every case (e.g. after a change of the encodings). Progress goes to stderr, the summary to
stdout; nothing personal is printed.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from matching import encoding
from matching.indexing import reindex_all, stale_count
from referrals import crypto


class Command(BaseCommand):
    help = "Compute the keyed matching indexes of existing cases, in resumable batches, with progress."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="cases per transaction (default 500)")
        parser.add_argument("--force", action="store_true", help="recompute up-to-date cases too")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be indexed; write nothing"
        )

    def handle(self, *args, batch_size: int, force: bool, dry_run: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            version = encoding.key_version()
        except crypto.KeyUnavailable:
            raise CommandError("BLIND_INDEX_KEY is not configured") from None
        todo = stale_count()
        prefix = "dry run: " if dry_run else ""
        self.stdout.write(f"{prefix}matching indexes under key {version}: {todo} case(s) missing or stale")
        totals = reindex_all(self.stderr, batch_size=batch_size, dry_run=dry_run, force=force)
        self.stdout.write(
            f"{prefix}{'would index' if dry_run else 'indexed'} {totals['indexed']} case(s) "
            f"of {totals['seen']}; "
            f"{totals['up_to_date']} already up to date; {totals['unavailable']} not decryptable"
        )
        if totals["unavailable"]:
            raise CommandError(
                f"{totals['unavailable']} case(s) could not be decrypted with the configured keys"
            )
