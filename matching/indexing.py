"""Keeping a case's keyed matching indexes in step with its subject: on create and update and on erasure
(the core's domain signals ``subject_saved`` / ``subject_erased``, sent inside the service's transaction),
for existing cases (``manage.py match_backfill``) and after a change of ``BLIND_INDEX_KEY``
(``blind_index_key_changed``: ``manage.py rotate_keys --reindex``)."""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from referrals import crypto
from referrals.models import Case, Subject

from . import encoding
from .models import MatchProfile, MatchToken


def _rows(case_id, institution_id, subject) -> tuple[MatchProfile, list[MatchToken]]:
    data, blocking = encoding.encode_subject(subject)
    profile = MatchProfile(
        case_id=case_id,
        institution_id=institution_id,
        sealed=encoding.seal_profile(case_id, data),
        key_version=encoding.key_version(),
        updated_at=timezone.now(),
    )
    tokens = [
        MatchToken(case_id=case_id, institution_id=institution_id, kind=kind, token=token)
        for kind, token in sorted(blocking)
    ]
    return profile, tokens


@transaction.atomic
def index_case(*, case: Case, subject: Subject, new: bool = False) -> None:
    """(Re)compute the case's profile and blocking tokens from its (decrypted, in memory) subject; ``new``:
    the case was just created (nothing to replace). Called inside the service's transaction."""
    profile, tokens = _rows(case.pk, case.institution_id, subject)
    if not new:
        MatchToken.objects.filter(case_id=case.pk).delete()
        MatchProfile.objects.filter(case_id=case.pk).delete()
    profile.save(force_insert=True)
    MatchToken.objects.bulk_create(tokens)


def forget_case(*, case_id) -> None:
    """Erasure: the case's keyed indexes go with its data key (crypto-shredding leaves nothing to match)."""
    MatchToken.objects.filter(case_id=case_id).delete()
    MatchProfile.objects.filter(case_id=case_id).delete()


def reindex_batch(
    *, after, batch_size: int, dry_run: bool = False, force: bool = False
) -> tuple[object, dict]:
    """One batch of live cases after ``after`` (by pk): (re)index those without a profile, or with one
    computed under another BLIND_INDEX_KEY (all of them with ``force``). Resumable: run it again and it
    continues where the indexes are missing or stale."""
    counts = {"seen": 0, "indexed": 0, "up_to_date": 0, "unavailable": 0}
    version = encoding.key_version()
    last = after
    with transaction.atomic():
        rows = Subject.objects.select_related("case").filter(case__erased_at__isnull=True).order_by("case_id")
        if after is not None:
            rows = rows.filter(case_id__gt=after)
        subjects = list(rows[:batch_size])
        current = dict(
            MatchProfile.objects.filter(case_id__in=[s.case_id for s in subjects]).values_list(
                "case_id", "key_version"
            )
        )
        profiles, tokens, stale = [], [], []
        for subject in subjects:
            counts["seen"] += 1
            last = subject.case_id
            if not force and current.get(subject.case_id) == version:
                counts["up_to_date"] += 1
                continue
            try:
                profile, case_tokens = _rows(subject.case_id, subject.case.institution_id, subject)
            except crypto.KeyUnavailable:
                counts["unavailable"] += 1
                continue
            profiles.append(profile)
            tokens.extend(case_tokens)
            stale.append(subject.case_id)
            counts["indexed"] += 1
        if stale and not dry_run:
            MatchToken.objects.filter(case_id__in=stale).delete()
            MatchProfile.objects.filter(case_id__in=stale).delete()
            MatchProfile.objects.bulk_create(profiles)
            MatchToken.objects.bulk_create(tokens, batch_size=2000)
    return last, counts


def stale_count() -> int:
    """Live cases whose indexes are missing or were computed under another key."""
    live = Case.objects.filter(erased_at__isnull=True, subject__isnull=False).count()
    current = MatchProfile.objects.filter(
        key_version=encoding.key_version(), case__erased_at__isnull=True
    ).count()
    return max(live - current, 0)


def reindex_all(progress, *, batch_size: int, dry_run: bool = False, force: bool = False) -> dict:
    """Every batch in turn (shared with ``rotate_keys --reindex``); a progress line per batch."""
    totals = {"seen": 0, "indexed": 0, "up_to_date": 0, "unavailable": 0}
    after, batches, started = None, 0, time.monotonic()
    while True:
        after, counts = reindex_batch(after=after, batch_size=batch_size, dry_run=dry_run, force=force)
        if not counts["seen"]:
            break
        batches += 1
        for name, value in counts.items():
            totals[name] += value
        progress.write(
            f"matching indexes: batch {batches}: seen {totals['seen']}, indexed {totals['indexed']}, "
            f"up to date {totals['up_to_date']} ({time.monotonic() - started:.1f} s)"
        )
        progress.flush()
        if counts["seen"] < batch_size:
            break
    return totals


# --- receivers of the referrals' domain signals (matching.apps) ---------------------------------------


def on_subject_saved(*, case, subject, new: bool, **_kwargs) -> None:
    index_case(case=case, subject=subject, new=new)


def on_subject_erased(*, case_id, **_kwargs) -> None:
    forget_case(case_id=case_id)


def on_key_changed(*, progress, batch_size: int, dry_run: bool, **_kwargs) -> tuple[str, dict]:
    return "matching", reindex_all(progress, batch_size=batch_size, dry_run=dry_run)
