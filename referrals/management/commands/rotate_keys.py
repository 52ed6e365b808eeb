"""``manage.py rotate_keys``: move every case's data key to the active key (contract §1).

Only the wrapped data keys change (58 bytes per case); the field ciphertexts, encrypted with the data keys,
stay as they are. Batches are committed one by one (``SELECT … FOR UPDATE`` on each batch), and a data key
already wrapped by the active key is skipped, so an interrupted run is resumed by running it again.
When it reports ``left on older keys: 0``, the older keys can be removed from ``FIELD_ENCRYPTION_KEYS``.

``--reindex`` also recomputes the blind indexes and the keyed matching indexes (``matching``) with the
current ``BLIND_INDEX_KEY`` (after a change of that key; search and matching miss the not yet reindexed
cases until then).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.recorder import record
from referrals import crypto
from referrals.models import Case, Subject
from referrals.signals import blind_index_key_changed


def rotate_batch(*, after, batch_size: int, dry_run: bool) -> tuple[object, dict]:
    """One batch of cases after ``after`` (by pk), locked; returns the last pk seen and the counts."""
    counts = {"seen": 0, "moved": 0, "already_active": 0, "unavailable": 0}
    active_id = crypto.kek_id(crypto.active_kek())
    last = after
    with transaction.atomic():
        rows = Case.objects.select_for_update().filter(wrapped_data_key__isnull=False).order_by("pk")
        if after is not None:
            rows = rows.filter(pk__gt=after)
        for pk, wrapped in rows.values_list("pk", "wrapped_data_key")[:batch_size]:
            counts["seen"] += 1
            last = pk
            if crypto.wrapped_key_id(wrapped) == active_id:
                counts["already_active"] += 1
                continue
            try:
                rewrapped = crypto.rewrap_data_key(wrapped, owner_id=pk)
            except crypto.KeyUnavailable:
                counts["unavailable"] += 1
                continue
            if not dry_run:
                Case.objects.filter(pk=pk).update(wrapped_data_key=rewrapped)
            counts["moved"] += 1
        if counts["moved"] and not dry_run:
            record(
                action="keys.rotated",
                actor_type="system",
                actor_label="manage.py rotate_keys",
                object_type="keys",
                detail={"moved": counts["moved"], "to_key": crypto.key_fingerprint(crypto.active_kek())},
            )
    return last, counts


def reindex_batch(*, after, batch_size: int, dry_run: bool) -> tuple[object, dict]:
    """Recompute the blind indexes of one batch of subjects with the current BLIND_INDEX_KEY."""
    counts = {"seen": 0, "reindexed": 0, "unavailable": 0}
    last = after
    with transaction.atomic():
        rows = (
            Subject.objects.select_for_update(of=("self",))
            .select_related("case")
            .filter(case__erased_at__isnull=True)
            .order_by("pk")
        )
        if after is not None:
            rows = rows.filter(pk__gt=after)
        for subject in rows[:batch_size]:
            counts["seen"] += 1
            last = subject.pk
            try:
                document = crypto.blind_index(
                    "document_number", crypto.normalize_document_number(subject.document_number)
                )
            except crypto.KeyUnavailable:
                counts["unavailable"] += 1
                continue
            if document != subject.document_number_index:
                if not dry_run:
                    Subject.objects.filter(pk=subject.pk).update(document_number_index=document)
                counts["reindexed"] += 1
    return last, counts


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
        left = self._left_on_older_keys()
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

    def _left_on_older_keys(self) -> int:
        active_id = crypto.kek_id(crypto.active_kek())
        return sum(
            1
            for wrapped in Case.objects.filter(wrapped_data_key__isnull=False)
            .order_by()
            .values_list("wrapped_data_key", flat=True)
            .iterator(chunk_size=5000)
            if crypto.wrapped_key_id(wrapped) != active_id
        )
