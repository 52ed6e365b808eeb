"""``manage.py rotate_keys``: move every case's data key to the active key (contract §1).

The work and its audit (``keys.rotated``) are in the core, ``referrals.key_rotation``; this command runs its
batches and prints the counts. Resumable: an interrupted run is resumed by running it again. When it reports
``left on older keys: 0``, the older keys can be removed from ``FIELD_ENCRYPTION_KEYS``.

``--reindex`` also recomputes the blind indexes and the keyed matching indexes (``matching``) with the
current ``BLIND_INDEX_KEY`` (after a change of that key; search and matching miss the not yet reindexed
cases until then).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from referrals import crypto
from referrals.key_rotation import left_on_older_keys, reindex_batch, rotate_batch
from referrals.signals import blind_index_key_changed


class Command(BaseCommand):
    help = (
        "Re-wrap every case's data key with the active (first) key of FIELD_ENCRYPTION_KEYS, in resumable "
        "batches; prints counts. Afterwards the older keys can be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="cases per transaction (default 500)")
        parser.add_argument("--dry-run", action="store_true", help="count what would move; change nothing")
        parser.add_argument(
            "--reindex", action="store_true", help="also recompute the blind indexes with BLIND_INDEX_KEY"
        )

    def handle(self, *args, batch_size: int, dry_run: bool, reindex: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            active = crypto.active_kek()
        except crypto.KeyUnavailable:
            raise CommandError("FIELD_ENCRYPTION_KEYS is not configured") from None
        prefix = "dry run: " if dry_run else ""
        self.stdout.write(
            f"{prefix}active key {crypto.key_fingerprint(active)}; "
            f"{len(crypto.keyring())} key(s) configured; batches of {batch_size}"
        )
        totals = self._run(rotate_batch, batch_size, dry_run, "data keys")
        moved_label = "would move" if dry_run else "moved"
        self.stdout.write(
            f"{prefix}{moved_label} {totals['moved']} data key(s) to the active key; "
            f"{totals['already_active']} already on it; {totals['unavailable']} not unwrappable; "
            f"{totals['seen']} case(s) with a data key"
        )
        left = left_on_older_keys()
        self.stdout.write(f"left on older keys: {left}")
        if reindex:
            index_totals = self._run(reindex_batch, batch_size, dry_run, "blind indexes")
            self.stdout.write(
                f"{prefix}{'would reindex' if dry_run else 'reindexed'} {index_totals['reindexed']} "
                f"subject(s) of {index_totals['seen']}; {index_totals['unavailable']} not decryptable"
            )
            responses = blind_index_key_changed.send(
                sender=self.__class__, progress=self.stderr, batch_size=batch_size, dry_run=dry_run
            )
            for _receiver, (name, counts) in responses:
                self.stdout.write(
                    f"{prefix}{'would recompute' if dry_run else 'recomputed'} the {name} indexes of "
                    f"{counts['indexed']} case(s) of {counts['seen']}; "
                    f"{counts['unavailable']} not decryptable"
                )
        if totals["unavailable"]:
            raise CommandError(
                f"{totals['unavailable']} data key(s) could not be unwrapped with the configured keys: "
                "add the missing key back and run rotate_keys again"
            )

    def _run(self, batch_fn, batch_size: int, dry_run: bool, label: str) -> dict:
        totals: dict[str, int] = {}
        after, batches, started = None, 0, time.monotonic()
        while True:
            after, counts = batch_fn(after=after, batch_size=batch_size, dry_run=dry_run)
            if not counts["seen"]:
                break
            batches += 1
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + value
            progress = ", ".join(f"{name} {value}" for name, value in totals.items())
            self.stderr.write(f"{label}: batch {batches}: {progress} ({time.monotonic() - started:.1f} s)")
            self.stderr.flush()
            if counts["seen"] < batch_size:
                break
        for name in ("seen", "moved", "already_active", "unavailable", "reindexed"):
            totals.setdefault(name, 0)
        return totals
