"""Key rotation (the core of ``manage.py rotate_keys``, contract §1): move every case's data key to the
active key, and recompute the blind indexes after a change of ``BLIND_INDEX_KEY``.

Only the wrapped data keys change (58 bytes per case); the field ciphertexts, encrypted with the data keys,
stay as they are. Batches are committed one by one (``SELECT … FOR UPDATE`` on each batch), and a data key
already wrapped by the active key is skipped, so an interrupted run is resumed by running it again. Each
batch that moved keys records ``keys.rotated`` (counts and the active key's fingerprint, never key
material) with a ``system`` actor.
"""

from __future__ import annotations

from django.db import transaction

from audit.recorder import record

from . import crypto
from .models import Case, Subject


def rotate_batch(
    *, after, batch_size: int, dry_run: bool, by: str = "manage.py rotate_keys"
) -> tuple[object, dict]:
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
                actor_label=by,
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


def left_on_older_keys() -> int:
    """Cases whose data key is still wrapped by an older key (0: the older keys can be removed)."""
    active_id = crypto.kek_id(crypto.active_kek())
    return sum(
        1
        for wrapped in Case.objects.filter(wrapped_data_key__isnull=False)
        .order_by()
        .values_list("wrapped_data_key", flat=True)
        .iterator(chunk_size=5000)
        if crypto.wrapped_key_id(wrapped) != active_id
    )
