"""The working day's lists and dashboards, read in the core and scoped to the reader.

Every query starts from the selectors' visibility (``cases_visible_to`` / ``referrals_visible_to``): a
supervisor, who sees every case and every received referral of the institution, gets the whole team; a
caseworker only what it may see. The status sets and the overdue rule are ``referrals.choices``'s. The
doors (the web's start page, lists and supervision pages) render what these return and never query the
models themselves. Querysets and counts only: a list's people are read through
``referrals.reads.referral_rows_read`` / ``case_rows_read``, which record the read.
"""

from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass

from django.db.models import Case as CaseWhen
from django.db.models import Count, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.actor import Actor
from accounts.choices import Role
from accounts.models import Office, User

from .choices import (
    ASSIGNABLE_STATUSES,
    AWAITING_ANSWER_STATUSES,
    IN_SERVICE_STATUSES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Status,
    Urgency,
    overdue,
    time_left,
)
from .models import Case, Referral
from .selectors import cases_visible_to, referrals_visible_to

__all__ = [
    "ANSWER_BUCKETS",
    "NATIONAL_INTAKE",
    "at_office",
    "ROW_RELATED",
    "UNKNOWN_OFFICE",
    "ResponseTimes",
    "WorkloadRow",
    "case_referrals",
    "caseworkers",
    "colleague",
    "filtered",
    "ids_with_reference",
    "my_cases",
    "nothing",
    "office_choice",
    "offices_supervised",
    "ordered",
    "references_of",
    "response_times",
    "team_queue",
    "team_workload",
    "time_left",
]

#: What a list row needs in one query (the person's data is decrypted from ``case__subject``).
ROW_RELATED = (
    "from_institution",
    "to_institution",
    "to_office",
    "assignee",
    "case",
    "case__subject",
    "consent",
)

#: ``office`` of the lists and dashboards below: an office of the actor's institution, this value (its
#: national intake: received referrals held by no office), or None (every office: no filter).
NATIONAL_INTAKE = "none"


# --- lists -------------------------------------------------------------------------------------------


def my_cases(actor: Actor) -> QuerySet[Case]:
    """Cases the actor owns or collaborates on (a supervisor sees every case, but "mine" stays mine),
    newest first, with the subject a row shows (``referrals.reads.case_rows_read``)."""
    user = actor.user
    return (
        cases_visible_to(actor)
        .filter(Q(owner=user) | Q(collaborators=user), erased_at__isnull=True)
        .distinct()
        .select_related("subject")
        .order_by("-created_at")
    )


def case_referrals(actor: Actor, case: Case) -> list[Referral]:
    """The referrals made from ``case`` that the actor may see, newest first (the case page's list)."""
    return list(
        referrals_visible_to(actor, direction="outbound")
        .filter(case=case)
        .select_related("to_institution")
        .order_by("-created_at")
    )


def ordered(referrals: QuerySet[Referral]) -> QuerySet[Referral]:
    """Overdue first, then open before closed, the most urgent first, the nearest deadline first."""
    return referrals.annotate(
        overdue_rank=CaseWhen(When(overdue(), then=Value(0)), default=Value(1), output_field=IntegerField()),
        open_rank=CaseWhen(
            When(status__in=list(TERMINAL_STATUSES), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        ),
        urgency_rank=CaseWhen(
            When(urgency=Urgency.EMERGENCY, then=Value(0)),
            When(urgency=Urgency.URGENT, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        ),
    ).order_by(
        "overdue_rank",
        "open_rank",
        "urgency_rank",
        F("response_due_at").asc(nulls_last=True),
        "-updated_at",
        "pk",
    )


def filtered(actor: Actor, filters: dict) -> QuerySet[Referral]:
    """The referrals the actor's institution sent or received (as the actor may see them), filtered by
    the codes of ``filters`` (``direction``, ``status`` — a list —, ``q`` — a reference —, ``assignee`` —
    ``me`` / ``none`` —, ``urgency``, ``overdue``), in the lists' order, with what a row needs."""
    referrals = referrals_visible_to(actor, direction=filters.get("direction") or None)
    if filters.get("status"):
        referrals = referrals.filter(status__in=filters["status"])
    if filters.get("q"):
        referrals = referrals.filter(reference__iexact=filters["q"])
    if filters.get("assignee") == "me":
        referrals = referrals.filter(assignee=actor.user)
    elif filters.get("assignee") == "none":
        referrals = referrals.filter(assignee__isnull=True)
    if filters.get("urgency"):
        referrals = referrals.filter(urgency=filters["urgency"])
    if filters.get("overdue"):
        referrals = referrals.filter(overdue())
    if filters.get("office") is not None:
        referrals = at_office(actor, referrals, filters["office"])
    return ordered(referrals).select_related(*ROW_RELATED)


def at_office(actor: Actor, referrals: QuerySet[Referral], office) -> QuerySet[Referral]:
    """The received referrals held by ``office`` (an office of the actor's institution), or by its national
    intake (``NATIONAL_INTAKE``); ``None``: all (as the API's ``office`` filter, contract §7.2)."""
    if office is None:
        return referrals
    if office == NATIONAL_INTAKE:
        return referrals.filter(to_institution=actor.institution, to_office__isnull=True)
    return referrals.filter(to_institution=actor.institution, to_office=office)


#: ``office_choice``'s answer for a value that names no office the actor may narrow to.
UNKNOWN_OFFICE = object()


def office_choice(actor: Actor, value: str):
    """The ``office`` of the dashboards for an asked ``value`` (``CODE``, ``none`` or empty): an office of
    ``offices_supervised``, ``NATIONAL_INTAKE`` (national staff only: an office's staff do not see it), None
    (no narrowing), or ``UNKNOWN_OFFICE``."""
    if not value:
        return None
    national = actor.user is None or actor.user.office_id is None
    if value == NATIONAL_INTAKE:
        return NATIONAL_INTAKE if national else UNKNOWN_OFFICE
    return next((o for o in offices_supervised(actor) if o.code == value), UNKNOWN_OFFICE)


def offices_supervised(actor: Actor) -> list[Office]:
    """The offices whose queue and dashboards the actor may narrow to: every office of the institution for
    national staff (no office), their own office for an office's staff (their visibility is that office)."""
    if actor.user is not None and actor.user.office_id is not None:
        return [actor.user.office]
    return list(Office.objects.filter(institution=actor.institution).order_by("name", "code"))


def nothing(actor: Actor) -> QuerySet[Referral]:
    """An empty list of referrals (a list asked with invalid filters shows nothing, never everything)."""
    return referrals_visible_to(actor).none()


def team_queue(actor: Actor, *, office=None) -> QuerySet[Referral]:
    """Inbound referrals nobody of the institution has taken yet (awaiting an answer or accepted, e.g.
    through the API), the overdue and most urgent first. The queue is the actor's office's (their
    visibility: an office's staff see what their office holds; national staff every office and the
    national intake), narrowed to ``office`` when given (see ``at_office``)."""
    referrals = referrals_visible_to(actor, direction="inbound").filter(
        assignee__isnull=True, status__in=list(ASSIGNABLE_STATUSES)
    )
    return ordered(at_office(actor, referrals, office)).select_related(*ROW_RELATED)


def caseworkers(actor: Actor, *, office=None) -> list[User]:
    """The active caseworkers of the actor's institution, by username: of the actor's office for an
    office's staff; of ``office`` (or the national ones, ``NATIONAL_INTAKE``) when given."""
    users = User.objects.filter(institution=actor.institution, role=Role.CASEWORKER, is_active=True)
    if actor.user is not None and actor.user.office_id is not None:
        users = users.filter(office_id=actor.user.office_id)
    if office == NATIONAL_INTAKE:
        users = users.filter(office__isnull=True)
    elif office is not None:
        users = users.filter(office=office)
    return list(users.order_by("username"))


def colleague(actor: Actor, user_id) -> User | None:
    """The staff account ``user_id`` of the actor's institution, if there is one (another institution's
    is none: a form cannot name it); whether it may be assigned is the assignment service's to say."""
    if user_id is None:
        return None
    return User.objects.filter(pk=user_id, institution=actor.institution).first()


# --- the supervisors' dashboards ----------------------------------------------------------------------


@dataclass
class WorkloadRow:
    user: User
    cases_open: int = 0
    outbound_open: int = 0
    inbound_in_service: int = 0
    inbound_assigned_open: int = 0


def team_workload(actor: Actor, *, office=None) -> tuple[list[WorkloadRow], int]:
    """Per active caseworker of the institution (of the actor's office, or of ``office``), of what the
    actor may see: open cases owned, open referrals sent, inbound in service; inbound assigned and still
    open (taken or assigned from the team queue); and the inbound referrals awaiting an answer (held by
    ``office`` when given). Five queries, whatever the team size."""
    rows = {u.pk: WorkloadRow(user=u) for u in caseworkers(actor, office=office)}
    counts = (
        (
            "cases_open",
            "owner",
            cases_visible_to(actor).filter(closed_at__isnull=True, erased_at__isnull=True),
        ),
        (
            "outbound_open",
            "created_by",
            referrals_visible_to(actor, direction="outbound").filter(status__in=OPEN_STATUSES),
        ),
    )
    for attribute, per_user, queryset in counts:
        for user_id, n in queryset.values(per_user).annotate(n=Count("id")).values_list(per_user, "n"):
            if user_id in rows:
                setattr(rows[user_id], attribute, n)
    inbound = at_office(actor, referrals_visible_to(actor, direction="inbound"), office)
    per_assignee = (
        inbound.filter(status__in=ASSIGNABLE_STATUSES)
        .values("assignee")
        .annotate(open=Count("id"), in_service=Count("id", filter=Q(status__in=IN_SERVICE_STATUSES)))
        .values_list("assignee", "open", "in_service")
    )
    for user_id, n_open, n_service in per_assignee:
        if user_id in rows:
            rows[user_id].inbound_assigned_open = n_open
            rows[user_id].inbound_in_service = n_service
    queue = inbound.filter(status__in=AWAITING_ANSWER_STATUSES).count()
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


def response_times(actor: Actor, *, direction: str = "inbound", days: int = 90, office=None) -> ResponseTimes:
    """The referrals received (or sent) in the last ``days`` that the actor may see: counts by status,
    the overdue ones, and the time to answer (``answered_at - sent_at``). ``office``: received by that
    office (or its national intake, ``NATIONAL_INTAKE``), or sent from it."""
    since = timezone.now() - datetime.timedelta(days=days)
    base = referrals_visible_to(actor, direction="outbound" if direction == "outbound" else "inbound")
    if direction == "outbound" and office is not None:
        if office == NATIONAL_INTAKE:
            base = base.filter(from_office__isnull=True)
        else:
            base = base.filter(from_office=office)
    elif office is not None:
        base = at_office(actor, base, office)
    base = base.filter(created_at__gte=since)
    counts = dict(base.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    by_status = [(s.value, str(s.label), counts.get(s.value, 0)) for s in Status]
    late = base.filter(overdue())
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
        overdue=late.count(),
        answered=len(durations),
        median_answer=median,
        buckets=buckets,
        overdue_referrals=list(
            late.select_related("from_institution", "to_institution").order_by("response_due_at")[:20]
        ),
    )


# --- references for the audit log ---------------------------------------------------------------------
#
# An institution's auditors (who hold no grant on its cases) read its cases and referrals by reference in
# its audit log: those of its cases and referrals — sent, or received once sent — and no other's.


def _own_referrals(actor: Actor) -> Q:
    institution = actor.institution
    return Q(from_institution=institution) | Q(to_institution=institution, sent_at__isnull=False)


def ids_with_reference(actor: Actor, reference: str) -> list:
    """The ids of the institution's case or referral with this reference (any letter case)."""
    cases = Case.objects.filter(institution=actor.institution, reference__iexact=reference).values_list(
        "pk", flat=True
    )
    referrals = Referral.objects.filter(_own_referrals(actor), reference__iexact=reference).values_list(
        "pk", flat=True
    )
    return [*cases, *referrals]


def references_of(actor: Actor, ids) -> dict:
    """id → reference of the institution's cases and referrals among ``ids`` (UUIDs; two queries)."""
    ids = list(ids)
    if not ids:
        return {}
    cases = Case.objects.filter(pk__in=ids, institution=actor.institution)
    found = dict(cases.values_list("pk", "reference"))
    found.update(Referral.objects.filter(_own_referrals(actor), pk__in=ids).values_list("pk", "reference"))
    return found
