"""Reads of the audit log, scoped to the actor's institution: the one visibility predicate of the project.

Every door (the API, the web pages, a case's access log) reads events through ``events_visible_to``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from .models import AuditCheckpoint, AuditEvent

#: The short form of an id shown on the pages (the first 8 hex digits of a UUID), or more of it.
SHORT_ID = re.compile(r"^[0-9a-f]{8}(-?[0-9a-f]{0,4})*$")


def events_visible_to(actor) -> QuerySet[AuditEvent]:
    """Events an institution's auditors may read (contract §4, Audit).

    Those whose actor belongs to the institution, and those on a case or referral it owns, sent or
    received (from ``send`` on): the recorder writes both into ``institutions`` (",IOM,DP,") — the actor's
    institution always among them — so one LIKE finds them on SQLite and PostgreSQL alike.
    """
    return AuditEvent.objects.filter(institutions__contains=f",{actor.institution.code},")


@dataclass(frozen=True)
class EventFilters:
    """What an auditor may filter on; every field optional, all combined with AND.

    ``object_ids``: events on any of these objects (with ``with_case_events``, also the events whose case
    is one of them: a case's referrals and notes); ``object_prefix``: the short id shown on the pages;
    ``actions``: any of these action codes (a label may stand for several).
    """

    object_ids: tuple[str, ...] = ()
    with_case_events: bool = False
    object_prefix: str = ""
    actor_id: str = ""
    actor_label: str = ""
    actor_institution: str = ""
    actions: tuple[str, ...] = ()
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None  # exclusive
    #: Set when a filter names something that does not exist (an unknown reference or label): no event.
    nothing: bool = False


def events_filtered(actor, filters: EventFilters) -> QuerySet[AuditEvent]:
    """The visible events matching ``filters`` (unordered: each door orders and pages)."""
    events = events_visible_to(actor)
    if filters.nothing:
        return events.none()
    if filters.object_ids:
        ids = list(filters.object_ids)
        if filters.with_case_events:
            events = events.filter(Q(object_id__in=ids) | Q(case_id__in=ids))
        else:
            events = events.filter(object_id__in=ids)
    if filters.object_prefix:
        prefix = filters.object_prefix
        events = events.filter(Q(object_id__startswith=prefix) | Q(case_id__startswith=prefix))
    if filters.actor_id:
        events = events.filter(actor_id=filters.actor_id)
    if filters.actor_label:
        events = events.filter(Q(actor_label=filters.actor_label) | Q(actor_id=filters.actor_label))
    if filters.actor_institution:
        events = events.filter(actor_institution=filters.actor_institution)
    if filters.actions:
        events = events.filter(action__in=list(filters.actions))
    if filters.since is not None:
        events = events.filter(at__gte=filters.since)
        before = _latest_sequence_before(filters.since - CLOCK_MARGIN)
        if before is not None:
            events = events.filter(sequence__gt=before)
    if filters.until is not None:
        events = events.filter(at__lt=filters.until)
        after = _earliest_sequence_from(filters.until + CLOCK_MARGIN)
        if after is not None:
            events = events.filter(sequence__lt=after)
    return events


#: How far apart the clocks of two writers may be. Events get their time under the chain's lock, so an
#: event written before another is at most this much later in time. A period is thus also a sequence range,
#: read on the ``at`` index (one row each side), so that a page in chain order never scans the events
#: outside the period: every event before one older than ``since − margin`` is older than ``since``;
#: every event after one newer than ``until + margin`` is newer than ``until``.
CLOCK_MARGIN = datetime.timedelta(minutes=5)


def _latest_sequence_before(moment: datetime.datetime) -> int | None:
    return AuditEvent.objects.filter(at__lt=moment).order_by("-at").values_list("sequence", flat=True).first()


def _earliest_sequence_from(moment: datetime.datetime) -> int | None:
    return AuditEvent.objects.filter(at__gte=moment).order_by("at").values_list("sequence", flat=True).first()


def checkpoints() -> QuerySet[AuditCheckpoint]:
    """Every signed checkpoint, oldest first: they reveal only the log's length, so every institution's
    auditors see all of them (contract §6.3)."""
    return AuditCheckpoint.objects.order_by("id")


def latest_checkpoint() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-id").first()


def object_ids(values: Iterable) -> tuple[str, ...]:
    return tuple(sorted({str(v) for v in values if v}))


def case_access_log(actor, case_id, limit: int = 100) -> list[AuditEvent]:
    """Who did what with this case and its referrals, newest first ("who accessed this case")."""
    return list(events_visible_to(actor).filter(case_id=str(case_id)).order_by("-sequence")[:limit])
