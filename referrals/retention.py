"""Retention: closed cases are erased (crypto-shredded) once ``RETENTION_DAYS`` have passed.

"Closed" is decided here, in one place:

* the case is not erased yet;
* none of its referrals is still open with another institution: every referral is terminal (completed,
  failed, rejected, cancelled, entered-in-error) or a draft (never sent; a draft idle for the whole period
  is abandoned work);
* and its last activity is older than the period: ``closed_at`` (when set), the case's ``updated_at``,
  every referral's ``updated_at`` (each transition, note or consent change bumps it) and every note's
  time are all before ``now - RETENTION_DAYS``.

A case with a referral still requested, received, accepted, in progress or on hold is never erased by
retention, however old: a person must close it first (the report counts these as ``held_open``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .choices import TERMINAL_STATUSES, Status
from .data_rights import subject_erase
from .models import Case, Note, Referral

logger = logging.getLogger(__name__)

#: Statuses that do not keep a case alive: terminal ones, and drafts (never sent).
_NOT_OPEN = frozenset(TERMINAL_STATUSES) | {Status.DRAFT}


def retention_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.RETENTION_DAYS)


def _open_referral() -> QuerySet:
    return Referral.objects.filter(case=OuterRef("pk")).exclude(status__in=_NOT_OPEN)


def cases_due_for_erasure(now: datetime | None = None) -> QuerySet[Case]:
    """Closed cases whose last activity is older than the retention period (see the module docstring)."""
    cutoff = retention_cutoff(now)
    recent_referral = Referral.objects.filter(case=OuterRef("pk"), updated_at__gte=cutoff)
    recent_note = Note.objects.filter(referral__case=OuterRef("pk"), at__gte=cutoff)
    return (
        Case.objects.filter(erased_at__isnull=True, updated_at__lt=cutoff)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__lt=cutoff))
        .exclude(Exists(_open_referral()))
        .exclude(Exists(recent_referral))
        .exclude(Exists(recent_note))
        .order_by("updated_at", "pk")
    )


def cases_held_open(now: datetime | None = None) -> QuerySet[Case]:
    """Cases idle for the whole period that retention keeps because a referral is still open."""
    cutoff = retention_cutoff(now)
    return Case.objects.filter(erased_at__isnull=True, updated_at__lt=cutoff).filter(Exists(_open_referral()))


def apply_retention(*, now: datetime | None = None, limit: int | None = None, dry_run: bool = False) -> dict:
    """Erase every case due (each in its own transaction, audited ``subject.erased`` with trigger
    ``retention``); idempotent and safe to run concurrently (``subject_erase`` locks the case and skips
    an erased one). Returns counts only."""
    due_ids = list(cases_due_for_erasure(now).values_list("pk", flat=True)[:limit])
    report = {
        "retention_days": settings.RETENTION_DAYS,
        "due": len(due_ids),
        "erased": 0,
        "held_open": cases_held_open(now).count(),
        "dry_run": dry_run,
    }
    if dry_run:
        return report
    for case_id in due_ids:
        case = Case.objects.filter(pk=case_id).first()
        if case is None:
            continue
        result = subject_erase(case=case, trigger="retention", operator="task:apply_retention")
        if not result.get("already_erased"):
            report["erased"] += 1
    logger.info(
        "retention: %d case(s) due, %d erased, %d held open by an open referral",
        report["due"],
        report["erased"],
        report["held_open"],
    )
    return report
