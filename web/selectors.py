"""Reads for the web UI's pages (start page, supervision dashboards, audit log), scoped to the actor."""

from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.actor import Actor
from accounts.choices import Role
from accounts.models import User
from audit.models import AuditEvent
from referrals.choices import TERMINAL_STATUSES, Status
from referrals.models import Case, Referral
from referrals.selectors import cases_visible_to

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


def audit_events_visible_to(actor: Actor) -> QuerySet[AuditEvent]:
    """Events an institution may read: those of its own staff and clients, and those on a case or
    referral it owns, sent or received (the ``institutions`` column holds ",IOM,DP,")."""
    code = actor.institution.code
    return AuditEvent.objects.filter(Q(actor_institution=code) | Q(institutions__contains=f",{code},"))


def audit_events_filtered(actor: Actor, filters: dict) -> QuerySet[AuditEvent]:
    events = audit_events_visible_to(actor)
    if filters.get("action"):
        events = events.filter(action=filters["action"])
    if filters.get("actor"):
        value = filters["actor"]
        events = events.filter(Q(actor_label=value) | Q(actor_id=value))
    if filters.get("object_id"):
        value = filters["object_id"]
        events = events.filter(Q(object_id=value) | Q(case_id=value))
    tz = timezone.get_current_timezone()
    if filters.get("date_from"):
        start = datetime.datetime.combine(filters["date_from"], datetime.time.min, tzinfo=tz)
        events = events.filter(at__gte=start)
    if filters.get("date_to"):
        end = datetime.datetime.combine(
            filters["date_to"], datetime.time.min, tzinfo=tz
        ) + datetime.timedelta(days=1)
        events = events.filter(at__lt=end)
    return events


def case_access_log(actor: Actor, case: Case, limit: int = 100) -> list[AuditEvent]:
    """Who did what with this case and its referrals, newest first ("who accessed this case")."""
    return list(audit_events_visible_to(actor).filter(case_id=str(case.pk)).order_by("-sequence")[:limit])


def audit_actions(actor: Actor) -> list[str]:
    """The action codes present in the institution's log (for the filter's suggestions)."""
    # order_by("action"): the model's ordering by sequence would otherwise defeat DISTINCT.
    actions = audit_events_visible_to(actor).order_by("action").values_list("action", flat=True).distinct()
    return list(actions[:200])
