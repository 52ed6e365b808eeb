"""Statistics of referrals for an institution: the read service every door uses (contract §6.4, §7.5).

``referral_statistics(actor=..., query=...)`` counts the referrals sent in the period that the actor's
institution sent or received (voided ones excluded), reduces each to ``ReferralFacts`` — the person's
sex, birth date, nationality and minor flag are decrypted here, in memory, only when a requested
dimension needs them and only where the core's read rule lets the institution read the person
(``referrals.selectors.receiver_consent_open``): they stay encrypted at rest — tabulates them with the
counts perturbed (cell-key method), caches the published result, and records the read.

The cache holds only what is published (true counts are not in it) and its key holds only ids,
dates and codes. The key includes a fingerprint of the data (``_fingerprint``: the number and the last
``updated_at`` of the institution's sent and received referrals, the last ``updated_at`` of any case), so
any new or changed referral (a transition, a consent withdrawal, an erasure; ``QuerySet.update()``
included, which skips signals) or an edited subject gives a new key: a stale figure is never served.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery

from accounts.actor import Actor
from accounts.models import Institution, Office
from audit.recorder import record
from referrals import crypto, policy
from referrals.choices import CATEGORY_FIELDS, Status
from referrals.fields import Sealed
from referrals.models import Case, Consent, Referral, ReferralEvent, Subject
from referrals.selectors import receiver_consent_open

from .perturbation import PROTECTION, max_adjustment
from .statistics import (
    UNKNOWN,
    ReferralFacts,
    StatisticsQuery,
    age_band,
    tabulate,
)

#: Bump when the published shape or the computation changes (old cache entries are then ignored).
CACHE_VERSION = 2
#: Cached results are keyed by the data itself; the timeout only bounds the memory they take.
CACHE_SECONDS = 6 * 3600
ANSWER_ACTIONS = ("accept", "reject")
#: The referral's column each non-personal dimension needs (month and the answer time are always read).
OPTIONAL_COLUMNS = {
    "from_institution": "from_institution_id",
    "service": "services",
    "urgency": "urgency",
    "status": "status",
    "to_office": "to_office_id",
    "province": "province",
}


@dataclass(frozen=True)
class StatisticsResult:
    """The published figures (the contract's response body) and how they were obtained."""

    body: dict
    cached: bool
    seconds: float


def min_cell() -> int:
    return int(settings.STATISTICS_MIN_CELL)


def _period_bounds(query: StatisticsQuery) -> Q:
    """``sent_at`` within the inclusive UTC dates."""
    start = datetime.datetime.combine(query.date_from, datetime.time.min, tzinfo=datetime.UTC)
    condition = Q(sent_at__gte=start)
    if query.date_to < datetime.date.max:
        end = datetime.datetime.combine(
            query.date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=datetime.UTC
        )
        return condition & Q(sent_at__lt=end)
    return condition & Q(sent_at__isnull=False)


def referrals_in_scope(institution: Institution, query: StatisticsQuery) -> QuerySet[Referral]:
    """Referrals sent in the period that the institution sent or received (voided ones included)."""
    return Referral.objects.filter(
        Q(from_institution=institution) | Q(to_institution=institution), _period_bounds(query)
    )


def _fingerprint(institution: Institution) -> str:
    """What changes whenever a figure of the institution could: three small aggregate queries.

    The number and the latest ``updated_at`` of the referrals it sent and of those it received (read from
    the ``(from|to)_institution, updated_at`` indexes: no scan of the period), and the latest ``updated_at``
    of any case (a corrected subject or an erasure). Every write of a referral — a transition, a note, a
    consent withdrawal, an erasure, including the services' bulk ``update()`` that skips signals — moves
    ``updated_at``. Wider than the period on purpose: a change outside it only costs one recomputation.
    """
    parts = []
    for side in ("from_institution", "to_institution"):
        data = Referral.objects.filter(**{side: institution}).aggregate(n=Count("*"), last=Max("updated_at"))
        parts += [str(data["n"]), _stamp(data["last"])]
    parts.append(_stamp(Case.objects.aggregate(last=Max("updated_at"))["last"]))
    return "|".join(parts)


def _stamp(value: datetime.datetime | None) -> str:
    return "" if value is None else f"{value.timestamp():.6f}"


def _cache_key(institution: Institution, query: StatisticsQuery, cell: int, fingerprint: str) -> str:
    """Ids, dates, dimension codes and the data's fingerprint — hashed to a fixed length."""
    raw = "|".join(
        [
            str(CACHE_VERSION),
            str(institution.pk),
            query.date_from.isoformat(),
            query.date_to.isoformat(),
            ",".join(query.by),
            str(cell),
            fingerprint,
        ]
    )
    return "reporting:referrals:" + hashlib.sha256(raw.encode()).hexdigest()


def _hours(sent_at: datetime.datetime | None, answered_at: datetime.datetime | None) -> float | None:
    if sent_at is None or answered_at is None:
        return None
    return max((answered_at - sent_at).total_seconds(), 0.0) / 3600


class _ConsentRow:
    """A consent's columns from a ``values_list`` row, judged by the model's own ``is_active``."""

    __slots__ = ("given", "withdrawn_at")
    is_active = Consent.is_active

    def __init__(self, given, withdrawn_at):
        self.given, self.withdrawn_at = given, withdrawn_at


class _ReferralRow:
    """A referral's access columns, for the core's read rule (``receiver_consent_open``)."""

    __slots__ = ("consent", "receiver_access_revoked_at")

    def __init__(self, consent, revoked_at):
        self.consent, self.receiver_access_revoked_at = consent, revoked_at


def _receiver_reads_person(categories, given: bool | None, withdrawn_at, revoked_at, fields) -> bool:
    """Whether the receiver may read these subject ``fields`` of the referral: the read rule of the core
    (consent given, not withdrawn, the receiver's access not revoked — by a rejection, a cancellation, a
    voiding or an erasure) and the consented categories releasing every field."""
    consent = None if given is None else _ConsentRow(given, withdrawn_at)
    if not receiver_consent_open(_ReferralRow(consent, revoked_at)):
        return False
    released = {name for category in categories or () for name in CATEGORY_FIELDS.get(category, ())}
    return released.issuperset(fields)


#: The subject's fields each personal dimension needs (nothing else is decrypted).
SUBJECT_FIELDS_BY_DIMENSION = {
    "sex": ("sex",),
    "nationality": ("nationality",),
    "age_band": ("date_of_birth",),
    "is_minor": ("is_minor",),
}


class _RowRef:
    """Stands for a subject row when building its associated data: the field needs only its ``pk``."""

    def __init__(self, pk):
        self.pk = pk


class _SubjectDecrypter:
    """Decrypts chosen subject fields from ``values_list`` rows, as ``EncryptedDescriptor`` does from an
    instance — the same data key (the case's, unwrapped by ``crypto.unwrap_data_key``), the same associated
    data (the field's own ``associated_data``) and the same codec — without building two model instances
    per referral (which would triple the cost of a cold report: see docs/performance.md)."""

    def __init__(self, names: tuple[str, ...]):
        self.fields = [Subject._meta.get_field(name) for name in names]

    def values(self, case_id, wrapped_key, subject_id, sealed: tuple) -> dict:
        """``{field name: value}``; ``None`` for each when the case was erased (its data key is gone)."""
        try:
            data_key = crypto.unwrap_data_key(wrapped_key, owner_id=case_id)
        except crypto.DataKeyDestroyed:
            return {}
        row = _RowRef(subject_id)
        out = {}
        for field, token in zip(self.fields, sealed, strict=True):
            if isinstance(token, Sealed):
                raw = crypto.decrypt_value(data_key, token.ciphertext, field.associated_data(row))
                out[field.name] = field.decode(raw)
        return out


def referral_facts(institution: Institution, query: StatisticsQuery) -> list[ReferralFacts]:
    """Every counted referral as ``ReferralFacts``, projected for the institution's side.

    One query over the period's referrals, selecting only the columns the requested dimensions need. The
    person's fields are decrypted in memory only for a requested personal dimension, and never for a
    received referral whose consent did not give ``identity`` (it counts as ``unknown``).
    """
    scope = referrals_in_scope(institution, query).exclude(status=Status.ENTERED_IN_ERROR)
    first_answer = (
        ReferralEvent.objects.filter(referral=OuterRef("pk"), action__in=ANSWER_ACTIONS)
        .order_by("at")
        .values("at")[:1]
    )
    wanted = set(query.by)
    columns = ["sent_at", "answered", "to_institution_id", "record_key"]
    columns += [column for dimension, column in OPTIONAL_COLUMNS.items() if dimension in wanted]
    subject_fields = tuple(f for d in query.by for f in SUBJECT_FIELDS_BY_DIMENSION.get(d, ()))
    personal = [
        "case_id",
        "case__wrapped_data_key",
        "case__subject__id",
        "consent__data_categories",
        "consent__given",
        "consent__withdrawn_at",
        "receiver_access_revoked_at",
        *(f"case__subject__{name}" for name in subject_fields),
    ]
    if subject_fields:
        columns += personal
    rows = scope.annotate(answered=Subquery(first_answer)).order_by().values_list(*columns)
    codes = dict(Institution.objects.values_list("id", "code"))
    offices = _office_keys() if "to_office" in wanted else {}
    decrypter = _SubjectDecrypter(subject_fields)
    at = {column: index for index, column in enumerate(columns)}
    sent_i, answered_i, to_i = at["sent_at"], at["answered"], at["to_institution_id"]
    record_key_i = at["record_key"]
    from_i, services_i = at.get("from_institution_id"), at.get("services")
    urgency_i, status_i = at.get("urgency"), at.get("status")
    office_i, province_i = at.get("to_office_id"), at.get("province")
    width = len(subject_fields)
    if width:
        case_i, key_i, subject_i = at["case_id"], at["case__wrapped_data_key"], at["case__subject__id"]
        categories_i, given_i, withdrawn_i, revoked_i = (
            at["consent__data_categories"],
            at["consent__given"],
            at["consent__withdrawn_at"],
            at["receiver_access_revoked_at"],
        )
    facts = []
    for row in rows.iterator(chunk_size=5000):
        sent = row[sent_i].astimezone(datetime.UTC)
        to_id = row[to_i]
        person = {}
        if width and (
            to_id != institution.pk
            or _receiver_reads_person(
                row[categories_i], row[given_i], row[withdrawn_i], row[revoked_i], subject_fields
            )
        ):
            person = decrypter.values(row[case_i], row[key_i], row[subject_i], row[-width:])
        is_minor = person.get("is_minor")
        facts.append(
            ReferralFacts(
                month=f"{sent.year:04d}-{sent.month:02d}",
                from_institution=UNKNOWN if from_i is None else codes.get(row[from_i], UNKNOWN),
                to_institution=codes.get(to_id, UNKNOWN),
                services=() if services_i is None else tuple(row[services_i] or ()),
                urgency=UNKNOWN if urgency_i is None else row[urgency_i],
                status=UNKNOWN if status_i is None else row[status_i],
                sex=person.get("sex") or UNKNOWN,
                age_band=age_band(person.get("date_of_birth"), sent.date()) if width else UNKNOWN,
                nationality=person.get("nationality") or UNKNOWN,
                is_minor=UNKNOWN if is_minor is None else bool(is_minor),
                hours_to_answer=_hours(row[sent_i], row[answered_i]),
                record_key=row[record_key_i],
                to_office=UNKNOWN
                if office_i is None
                else offices.get(row[office_i], codes.get(to_id, UNKNOWN)),
                province=UNKNOWN if province_i is None else row[province_i] or UNKNOWN,
            )
        )
    return facts


def _office_keys() -> dict:
    """``{office id: "DP/DARIEN"}`` (``Office.key``) in one query; a referral at its receiver's national
    intake (no office) counts under the institution's code alone (contract §7.2)."""
    return {office.pk: office.key for office in Office.objects.select_related("institution")}


def compute_statistics(institution: Institution, query: StatisticsQuery, *, cell: int | None = None) -> dict:
    """The contract's response body, computed now (no cache, no audit)."""
    cell = min_cell() if cell is None else cell
    table = tabulate(referral_facts(institution, query), query.by, cell)
    return {
        "from": query.date_from.isoformat(),
        "to": query.date_to.isoformat(),
        "by": list(query.by),
        "min_cell": cell,
        "protection": PROTECTION,
        "max_adjustment": max_adjustment(cell),
        "total": table["total"],
        "rows": table["rows"],
    }


def cached_statistics(institution: Institution, query: StatisticsQuery) -> StatisticsResult:
    """The figures from the cache when the data in scope did not change since, else computed and cached."""
    started = time.perf_counter()
    cell = min_cell()
    key = _cache_key(institution, query, cell, _fingerprint(institution))
    body = cache.get(key)
    cached = body is not None
    if not cached:
        body = compute_statistics(institution, query, cell=cell)
        cache.set(key, body, CACHE_SECONDS)
    return StatisticsResult(body=body, cached=cached, seconds=time.perf_counter() - started)


def referral_statistics(*, actor: Actor, query: StatisticsQuery, door: str = "api") -> StatisticsResult:
    """The figures for the actor's institution; records ``statistics.viewed`` (the query, no figures).
    Only for those the policy lets see statistics (``Forbidden`` otherwise: 403 at every door)."""
    policy.require_view_statistics(actor)
    result = cached_statistics(actor.institution, query)
    record(
        actor=actor,
        action="statistics.viewed",
        object_type="statistics",
        object_id="referrals",
        institutions=[actor.institution],
        detail={**query.as_detail(), "door": door},
    )
    return result


def record_export(*, actor: Actor, query: StatisticsQuery, file_format: str) -> None:
    """Records ``statistics.exported`` (the query and the format; no figures, no personal data); only for
    those the policy lets see statistics."""
    policy.require_view_statistics(actor)
    record(
        actor=actor,
        action="statistics.exported",
        object_type="statistics",
        object_id="referrals",
        institutions=[actor.institution],
        detail={**query.as_detail(), "format": file_format},
    )
