"""Reads, always scoped to the actor first (a single permission-filtered query, never a check per row)."""

from __future__ import annotations

from functools import lru_cache

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.signals import post_migrate

from accounts.actor import Actor

from .choices import Side, Status, overdue
from .errors import NotVisible
from .models import (
    Case,
    CaseGroupObjectPermission,
    CaseUserObjectPermission,
    Referral,
    ReferralGroupObjectPermission,
    ReferralUserObjectPermission,
)


@lru_cache(maxsize=8)
def _codenames(model_name: str) -> dict[int, str]:
    """Permission id → codename for a referrals model (constant for the life of the process)."""
    return dict(
        Permission.objects.filter(
            content_type__app_label="referrals", content_type__model=model_name
        ).values_list("id", "codename")
    )


# Permissions are re-created (with new ids) when a database is flushed and migrated again.
post_migrate.connect(
    lambda **_kwargs: _codenames.cache_clear(), weak=False, dispatch_uid="selectors-codenames"
)


def _permission_id(model_name: str, codename: str) -> int | None:
    """The id of a referrals permission."""
    return next((pk for pk, name in _codenames(model_name).items() if name == codename), None)


def _holds(user_model, group_model, actor: Actor, codename: str, outer: str = "pk") -> Q:
    """The actor holds ``codename`` on the object whose id is the outer row's ``outer`` column.

    Correlated EXISTS probes on guardian's unique (group, permission, object) index: a page of a list
    costs the same whatever the size of the permission tables (an ``IN (subquery)`` would read every
    grant of the actor's groups on each request).
    """
    permission_id = _permission_id(
        group_model._meta.get_field("content_object").related_model._meta.model_name, codename
    )
    by_group = group_model.objects.filter(
        group_id__in=actor.group_ids, permission_id=permission_id, content_object_id=OuterRef(outer)
    )
    condition = Q(Exists(by_group))
    if actor.user is not None:
        by_user = user_model.objects.filter(
            user_id=actor.user.pk, permission_id=permission_id, content_object_id=OuterRef(outer)
        )
        condition |= Q(Exists(by_user))
    return condition


def cases_visible_to(actor: Actor) -> QuerySet[Case]:
    """Cases of the actor's institution that the actor is assigned to (or supervises)."""
    return Case.objects.filter(
        _holds(CaseUserObjectPermission, CaseGroupObjectPermission, actor, "view_case"),
        institution=actor.institution,
    )


def _sent_by(actor: Actor) -> Q:
    return Q(from_institution=actor.institution) & _holds(
        CaseUserObjectPermission, CaseGroupObjectPermission, actor, "view_case", outer="case_id"
    )


def _received_by(actor: Actor) -> Q:
    return (
        Q(to_institution=actor.institution)
        & ~Q(status=Status.DRAFT)
        & _holds(ReferralUserObjectPermission, ReferralGroupObjectPermission, actor, "view_referral")
    )


def referrals_visible_to(actor: Actor, *, direction: str | None = None) -> QuerySet[Referral]:
    """Referrals the actor's side sent (and the actor may see the case) or received once sent.

    ``direction`` (``inbound`` / ``outbound``) keeps only one side: the query then carries one
    permission probe instead of two.
    """
    if direction == "inbound":
        return Referral.objects.filter(_received_by(actor))
    if direction == "outbound":
        return Referral.objects.filter(_sent_by(actor))
    return Referral.objects.filter(_sent_by(actor) | _received_by(actor))


def referrals_held(actor: Actor, referral_ids: list, codename: str) -> set:
    """Of ``referral_ids``, those on which the actor holds ``codename`` (one query; for a list's page)."""
    if not referral_ids:
        return set()
    return set(
        Referral.objects.filter(
            _holds(ReferralUserObjectPermission, ReferralGroupObjectPermission, actor, codename),
            pk__in=referral_ids,
        ).values_list("pk", flat=True)
    )


def parties(referral: Referral) -> list:
    """The institutions an event about ``referral`` concerns (who may read it in their audit log): the
    receiver only once the referral was sent to it — a draft is the sender's alone."""
    if referral.sent_at is None:
        return [referral.from_institution]
    return [referral.from_institution, referral.to_institution]


def side_of(actor: Actor, referral: Referral) -> str:
    return Side.SENDER if referral.from_institution_id == actor.institution.pk else Side.RECEIVER


_GRANT_MODELS = {
    "case": (CaseUserObjectPermission, CaseGroupObjectPermission),
    "referral": (ReferralUserObjectPermission, ReferralGroupObjectPermission),
}


def _held_sql(actor: Actor, object_type: str, target_sql: str, target_params=()) -> tuple[str, list] | None:
    """A scalar subquery: the ids of the permissions the actor holds on the object whose id is
    ``target_sql`` (a column of the outer row, or a placeholder for ``target_params``), directly or through
    its groups, comma-separated (NULL when none); ``None`` when the actor has no holder at all.

    Written out on guardian's (object, holder) columns with the models' own table and column names and the
    fields' own value preparation: the ORM compiling this two-table union cost six times the lookup itself
    on PostgreSQL, on every read of a referral (docs/performance.md). It rides in the referral's own row
    query (``referral_visible_to``): one round trip fewer per read.
    """
    user_model, group_model = _GRANT_MODELS[object_type]
    quote = connection.ops.quote_name
    parts, params = [], []
    holders = [(group_model, "group", list(actor.group_ids))]
    if actor.user is not None:
        holders.append((user_model, "user", [actor.user.pk]))
    for model, holder, holder_ids in holders:
        if not holder_ids:
            continue
        meta = model._meta
        target, holder_field = meta.get_field("content_object"), meta.get_field(holder)
        parts.append(
            f"SELECT {quote(meta.get_field('permission').column)} AS p FROM {quote(meta.db_table)}"  # noqa: S608
            f" WHERE {quote(target.column)} = {target_sql}"
            f" AND {quote(holder_field.column)} IN ({', '.join(['%s'] * len(holder_ids))})"
        )
        params += [
            *target_params,
            *(holder_field.target_field.get_db_prep_value(h, connection) for h in holder_ids),
        ]
    if not parts:
        return None
    # The one dialect difference: PostgreSQL's string_agg is SQLite's group_concat.
    aggregate = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"(SELECT {aggregate}(CAST(held.p AS text), ',') FROM ({' UNION ALL '.join(parts)}) held)", params  # noqa: S608


def _held_codenames(actor: Actor, object_type: str, object_id) -> set[str]:
    """The permission codenames the actor holds on one object, directly or through its groups (one
    statement: ``_held_sql`` on that object's id)."""
    target = _GRANT_MODELS[object_type][1]._meta.get_field("content_object").target_field
    subquery = _held_sql(actor, object_type, "%s", [target.get_db_prep_value(object_id, connection)])
    if subquery is None:
        return set()
    sql, params = subquery
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)  # noqa: S608 — ids and names only, values as parameters
        return _codenames_held(object_type, cursor.fetchone()[0])


def _codenames_held(object_type: str, ids: str | None) -> set[str]:
    """The codenames of the comma-separated permission ids a ``_held_sql`` subquery returned."""
    held = {int(pk) for pk in ids.split(",")} if ids else set()
    names = _codenames(object_type)  # the keys of _GRANT_MODELS are the models' names
    if not names.keys() >= held:  # a permission created since the process read them
        _codenames.cache_clear()
        names = _codenames(object_type)
    return {names[permission_id] for permission_id in held if permission_id in names}


def has_referral_perm(actor: Actor, referral: Referral, codename: str) -> bool:
    cached = referral.__dict__.get("_held_for")
    if cached is not None and cached[0] == (actor.kind, actor.id):
        return codename in cached[1]
    return codename in _held_codenames(actor, "referral", referral.pk)


def receiver_consent_open(referral: Referral) -> bool:
    """Consent still lets personal data reach the receiver: given, not withdrawn, access not revoked."""
    consent = getattr(referral, "consent", None)
    return consent is not None and consent.is_active and referral.receiver_access_revoked_at is None


def receiver_sees_personal(actor: Actor, referral: Referral) -> bool:
    """The receiver sees personal data while it holds the permission and consent is active."""
    return receiver_consent_open(referral) and has_referral_perm(actor, referral, "view_referral_personal")


def can_see_personal(actor: Actor, referral: Referral) -> bool:
    """Whether the actor sees the referral's personal data (remembered on the instance for the request)."""
    cache = referral.__dict__.setdefault("_personal_for", {})
    key = (actor.kind, actor.id)
    if key not in cache:
        cache[key] = side_of(actor, referral) == Side.SENDER or receiver_sees_personal(actor, referral)
    return cache[key]


def _deny(actor: Actor, object_type: str, object_id, *, institutions=(), case_id="") -> NotVisible:
    """The 404 to raise for an object the actor asked for but may not see, carrying the ``access.denied``
    event the core records (``referrals.reads.fetch_*``; selectors never write).

    Alike for an object that does not exist, with the same action, ids and detail: the event the actor's
    own institution reads (it is the actor's) must not tell the two apart. Only when the object exists are
    its institutions (and its case, for the data subject's access log) added, so that they see the attempt.
    """
    return NotVisible(
        denial={
            "actor": actor,
            "action": "access.denied",
            "object_type": object_type,
            "object_id": str(object_id)[:64],
            "case_id": case_id,
            "institutions": list(institutions),
            "outcome": "denied",
            "detail": {"cause": "not-visible"},
        }
    )


def case_visible_to(actor: Actor, case_id) -> Case:
    """The case if the actor may see it; else ``NotVisible`` (with the denial for the core to record)."""
    case = cases_visible_to(actor).select_related("institution", "subject").filter(pk=case_id).first()
    if case is None:
        owner = Case.objects.filter(pk=case_id).values_list("pk", "institution__code").first()
        if owner is None:
            raise _deny(actor, "case", case_id)
        raise _deny(actor, "case", case_id, institutions=[owner[1]], case_id=owner[0])
    return case


#: What a referral's representation needs, in the row's one query. Not its assignee: joining the users
#: table cost every read of a referral 0.7 ms of PostgreSQL's planning (a seventh table), for a name shown
#: only once someone took it; an assigned referral loads its assignee when shown (one small query). Nor
#: its offices: the representation shows their codes only (``accounts.directory.office_code``).
REFERRAL_RELATED = (
    "case",
    "case__subject",
    "from_institution",
    "to_institution",
    "consent",
)


#: The annotations of ``referral_visible_to``: (name, grants of, the referral's column holding its id).
_HELD_ON = (("held_on_case", "case", "case"), ("held_on_referral", "referral", "id"))


def referral_visible_to(actor: Actor, referral_id, *, for_update: bool = False) -> Referral:
    """The referral if the actor may see it (else ``NotVisible``, the same 404 as a missing one, carrying
    the ``access.denied`` event the core records).

    Same rule as ``referrals_visible_to``, in one small query: the row (with what its representation
    needs) and the actor's grants on its case and on it (``_held_sql``), whichever side the actor turns
    out to be on — cheaper than compiling the two-sided permission filter.
    """
    quote = connection.ops.quote_name
    meta = Referral._meta
    held_on = {}
    for name, object_type, field_name in _HELD_ON:
        column = f"{quote(meta.db_table)}.{quote(meta.get_field(field_name).column)}"
        subquery = _held_sql(actor, object_type, column)
        if subquery is not None:
            held_on[name] = RawSQL(*subquery)  # noqa: S611 — ids and names only, values as parameters
    query = Referral.objects.select_related(*REFERRAL_RELATED).annotate(**held_on)
    if for_update:
        # Lock the referral's row only (FOR UPDATE OF, not the joined rows), in the same query;
        # visibility is checked below, and a caller that gets NotVisible rolls back, releasing the lock.
        query = query.select_for_update(of=("self",))
    try:
        referral = query.get(pk=referral_id)
    except (Referral.DoesNotExist, ValidationError, ValueError):
        raise _deny(actor, "referral", referral_id) from None
    # Read off the instance: they are this read's, not the referral's.
    on_case, on_referral = (referral.__dict__.pop(name, None) for name, _type, _field in _HELD_ON)
    institution_id = actor.institution.pk
    if referral.from_institution_id == institution_id:
        visible = "view_case" in _codenames_held("case", on_case)
    elif referral.to_institution_id == institution_id and referral.status != Status.DRAFT:
        held = _codenames_held("referral", on_referral)
        referral.__dict__["_held_for"] = ((actor.kind, actor.id), held)
        visible = "view_referral" in held
    else:
        visible = False
    if not visible:
        raise _deny(actor, "referral", referral.pk, institutions=parties(referral), case_id=referral.case_id)
    return referral


def find_cases_by_document_number(actor: Actor, document_number: str) -> list[Case]:
    """Exact search through the blind index, then decrypt and compare to rule out collisions."""
    from .crypto import blind_index, normalize_document_number

    normalized = normalize_document_number(document_number)
    if not normalized:
        return []
    candidates = (
        cases_visible_to(actor)
        .filter(
            subject__document_number_index=blind_index("document_number", normalized), erased_at__isnull=True
        )
        .select_related("institution", "subject")
    )
    return [c for c in candidates if normalize_document_number(c.subject.document_number) == normalized]


def overdue_unanswered(limit: int) -> list[Referral]:
    """Referrals past ``response_due_at`` that the receiver has not answered yet, most overdue first."""
    return list(Referral.objects.filter(overdue()).order_by("response_due_at")[:limit])
