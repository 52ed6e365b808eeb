"""Reads for the web UI's pages (start page, supervision dashboards, audit log), scoped to the actor."""

from __future__ import annotations

import datetime
import re
import statistics
import unicodedata
import uuid
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone, translation

from accounts.actor import Actor
from accounts.choices import Role
from accounts.models import User
from audit import selectors as audit_selectors
from audit.models import AuditEvent
from referrals.choices import TERMINAL_STATUSES, Status
from referrals.models import Case, Referral
from referrals.selectors import cases_visible_to

from .presentation import AUDIT_ACTION_LABELS

AWAITING_ANSWER = (Status.REQUESTED, Status.RECEIVED)
IN_SERVICE = (Status.ACCEPTED, Status.IN_PROGRESS, Status.ON_HOLD)
OPEN_STATUSES = tuple(s for s in Status.values if s not in TERMINAL_STATUSES)


def my_cases(actor: Actor) -> QuerySet[Case]:
    """Cases the actor owns or collaborates on (a supervisor sees every case, but "mine" stays mine)."""
    user = actor.user
    return (
        cases_visible_to(actor)
        .filter(Q(owner=user) | Q(collaborators=user), erased_at__isnull=True)
        .distinct()
        .order_by("-created_at")
    )


@dataclass
class WorkloadRow:
    user: User
    cases_open: int = 0
    outbound_open: int = 0
    inbound_in_service: int = 0
    inbound_assigned_open: int = 0


def team_workload(actor: Actor) -> tuple[list[WorkloadRow], int]:
    """Per caseworker of the institution: open cases owned, open referrals sent, inbound in service;
    inbound assigned and still open (taken or assigned from the team queue); and the inbound queue
    nobody has answered yet. Four grouped queries, whatever the team size."""
    institution = actor.institution
    caseworkers = list(
        User.objects.filter(institution=institution, role=Role.CASEWORKER, is_active=True).order_by(
            "username"
        )
    )
    rows = {u.pk: WorkloadRow(user=u) for u in caseworkers}
    counts = (
        (
            "cases_open",
            "owner",
            Case.objects.filter(institution=institution, closed_at__isnull=True, erased_at__isnull=True),
        ),
        (
            "outbound_open",
            "created_by",
            Referral.objects.filter(from_institution=institution, status__in=OPEN_STATUSES),
        ),
    )
    for attribute, per_user, queryset in counts:
        for user_id, n in queryset.values(per_user).annotate(n=Count("id")).values_list(per_user, "n"):
            if user_id in rows:
                setattr(rows[user_id], attribute, n)
    # Inbound per assignee: still open (taken or assigned from the team queue), and of those in service.
    inbound = (
        Referral.objects.filter(to_institution=institution, status__in=AWAITING_ANSWER + IN_SERVICE)
        .values("assignee")
        .annotate(open=Count("id"), in_service=Count("id", filter=Q(status__in=IN_SERVICE)))
        .values_list("assignee", "open", "in_service")
    )
    for user_id, n_open, n_service in inbound:
        if user_id in rows:
            rows[user_id].inbound_assigned_open = n_open
            rows[user_id].inbound_in_service = n_service
    queue = Referral.objects.filter(to_institution=institution, status__in=AWAITING_ANSWER).count()
    return list(rows.values()), queue


ANSWER_BUCKETS = (
    ("≤ 24 h", datetime.timedelta(hours=24)),
    ("1–3 d", datetime.timedelta(days=3)),
    ("3–7 d", datetime.timedelta(days=7)),
    ("7–14 d", datetime.timedelta(days=14)),
    ("> 14 d", None),
)


@dataclass
class ResponseTimes:
    direction: str
    by_status: list[tuple[str, str, int]]  # (code, label, count)
    total: int
    overdue: int
    answered: int
    median_answer: datetime.timedelta | None
    buckets: list[tuple[str, int]]
    overdue_referrals: list[Referral]


def response_times(actor: Actor, *, direction: str = "inbound", days: int = 90) -> ResponseTimes:
    """Referrals received (or sent) by the institution in the last ``days``: counts by status, overdue
    ones (still unanswered after ``response_due_at``), and the time to answer (``answered_at - sent_at``)."""
    institution = actor.institution
    since = timezone.now() - datetime.timedelta(days=days)
    if direction == "outbound":
        base = Referral.objects.filter(from_institution=institution)
    else:
        base = Referral.objects.filter(to_institution=institution).exclude(status=Status.DRAFT)
    base = base.filter(created_at__gte=since)
    counts = dict(base.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    by_status = [(s.value, str(s.label), counts.get(s.value, 0)) for s in Status]
    now = timezone.now()
    overdue_qs = base.filter(status__in=AWAITING_ANSWER, response_due_at__lt=now)
    answered = list(
        base.filter(answered_at__isnull=False, sent_at__isnull=False).values_list("sent_at", "answered_at")
    )
    durations = [a - s for s, a in answered]
    median = statistics.median(durations) if durations else None
    buckets = []
    lower = datetime.timedelta(0)
    for label, upper in ANSWER_BUCKETS:
        n = sum(1 for d in durations if d >= lower and (upper is None or d < upper))
        buckets.append((label, n))
        lower = upper or lower
    return ResponseTimes(
        direction=direction,
        by_status=by_status,
        total=sum(counts.values()),
        overdue=overdue_qs.count(),
        answered=len(durations),
        median_answer=median,
        buckets=buckets,
        overdue_referrals=list(
            overdue_qs.select_related("from_institution", "to_institution").order_by("response_due_at")[:20]
        ),
    )


# --- the audit log's pages: the filters of the form, over the one predicate of audit.selectors -----------


ACTION_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a label ("Acceso DENEGADO" matches "acceso denegado")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


def actions_matching(text: str) -> tuple[str, ...]:
    """The action codes that ``text`` names: the code itself, or (part of) its label in Spanish or English."""
    wanted = _fold(text)
    if not wanted:
        return ()
    codes = set()
    for code, label in AUDIT_ACTION_LABELS.items():
        if wanted == code:
            codes.add(code)
            continue
        for language in ("es", "en"):
            with translation.override(language):
                if wanted in _fold(str(label)):
                    codes.add(code)
    if not codes and ACTION_CODE.match(text):
        codes.add(text)  # a code with no label yet (e.g. a newer action)
    return tuple(sorted(codes))


def _objects_named(actor: Actor, reference: str) -> tuple[str, ...]:
    """The ids of the case or referral of the actor's institution with this reference (any case)."""
    institution = actor.institution
    cases = Case.objects.filter(institution=institution, reference__iexact=reference).values_list(
        "pk", flat=True
    )
    referrals = Referral.objects.filter(
        Q(from_institution=institution) | Q(to_institution=institution, sent_at__isnull=False),
        reference__iexact=reference,
    ).values_list("pk", flat=True)
    return audit_selectors.object_ids([*cases, *referrals])


def audit_filters(actor: Actor, cleaned: dict) -> audit_selectors.EventFilters:
    """The audit form's values as the audit selector's filters.

    The object field takes an id, the short id shown on the page (its first 8 hex digits, or more), or a
    case's or referral's reference; the action field a code or (part of) its label in either language.
    """
    values: dict = {}
    nothing = False
    if cleaned.get("action"):
        values["actions"] = actions_matching(cleaned["action"])
        nothing = nothing or not values["actions"]
    if cleaned.get("actor"):
        values["actor_label"] = cleaned["actor"]
    target = (cleaned.get("object_id") or "").strip()
    if target:
        try:
            values["object_ids"] = (str(uuid.UUID(target)),)
        except ValueError:
            if audit_selectors.SHORT_ID.match(target.lower()):
                values["object_prefix"] = target.lower()
            else:
                named = _objects_named(actor, target)
                values["object_ids"] = named or (target,)
    tz = timezone.get_current_timezone()
    if cleaned.get("date_from"):
        values["since"] = datetime.datetime.combine(cleaned["date_from"], datetime.time.min, tzinfo=tz)
    if cleaned.get("date_to"):
        end = datetime.datetime.combine(cleaned["date_to"], datetime.time.min, tzinfo=tz)
        values["until"] = end + datetime.timedelta(days=1)
    return audit_selectors.EventFilters(nothing=nothing, with_case_events=True, **values)


def audit_events_filtered(actor: Actor, cleaned: dict) -> QuerySet[AuditEvent]:
    return audit_selectors.events_filtered(actor, audit_filters(actor, cleaned))


def audit_object_references(actor: Actor, events) -> dict[str, str]:
    """object id → reference, for the cases and referrals of the actor's institution among ``events``
    (two queries per page; another institution's objects keep their short id: no reference leaks)."""
    ids = {e.object_id for e in events if e.object_type in ("case", "referral") and e.object_id}
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue
    if not valid:
        return {}
    institution = actor.institution
    found = dict(Case.objects.filter(pk__in=valid, institution=institution).values_list("pk", "reference"))
    found.update(
        Referral.objects.filter(
            Q(from_institution=institution) | Q(to_institution=institution, sent_at__isnull=False),
            pk__in=valid,
        ).values_list("pk", "reference")
    )
    return {str(pk): reference for pk, reference in found.items()}


def case_access_log(actor: Actor, case: Case, limit: int = 100) -> list[AuditEvent]:
    """Who did what with this case and its referrals, newest first ("who accessed this case")."""
    return audit_selectors.case_access_log(actor, case.pk, limit)
