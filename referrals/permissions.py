"""Object permissions (django-guardian, direct FK models). Only services call these."""

from __future__ import annotations

import functools

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_migrate

from accounts.choices import GroupKind
from accounts.models import Institution, Office, User, office_group_name
from audit.recorder import record

from .models import (
    Case,
    CaseGroupObjectPermission,
    CaseUserObjectPermission,
    Referral,
    ReferralGroupObjectPermission,
    ReferralUserObjectPermission,
)
from .selectors import parties

CASE_PERMS = ("view_case", "change_case", "view_case_personal")
RECEIVER_PERMS = ("view_referral", "change_referral", "view_referral_personal")
#: What revocation removes: the receiver keeps ``view_referral`` (metadata only).
RECEIVER_REVOCABLE = ("change_referral", "view_referral_personal")
CASE_GROUP_KINDS = (GroupKind.SUPERVISORS, GroupKind.SERVICE)
RECEIVER_GROUP_KINDS = (GroupKind.INTAKE, GroupKind.SUPERVISORS, GroupKind.SERVICE)


def _audit(actor, action: str, obj, case_id, institutions, grantee: str, perms) -> None:
    record(
        actor=actor,
        action=action,
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        case_id=case_id,
        institutions=institutions,
        detail={"grantee": grantee, "permissions": list(perms)},
    )


def _permissions(model, codenames) -> list[Permission]:
    """The Permission rows of ``codenames`` on ``model`` (one query the first time in a process)."""
    return list(_permissions_cached(model, tuple(codenames)))


@functools.lru_cache(maxsize=64)
def _permissions_cached(model, codenames: tuple[str, ...]) -> tuple[Permission, ...]:
    content_type = ContentType.objects.get_for_model(model)
    perms = tuple(Permission.objects.filter(content_type=content_type, codename__in=codenames))
    missing = set(codenames) - {p.codename for p in perms}
    if missing:
        raise LookupError(f"permissions not migrated: {sorted(missing)}")
    return perms


# Permissions are re-created (with new ids) when a database is flushed and migrated again.
post_migrate.connect(
    lambda **_kwargs: _permissions_cached.cache_clear(), weak=False, dispatch_uid="permissions-rows"
)


def _groups(institution: Institution, kinds, offices=()) -> list[Group]:
    """The institution's groups of ``kinds``, and the groups named ``offices`` (``(office, supervisors)``
    pairs), in one query (created on first use, like ``group()``)."""
    names = {f"{institution.code}:{GroupKind(kind).value}": kind for kind in kinds}
    office_names = {
        office_group_name(institution.code, office.code, supervisors=supervisors): (office, supervisors)
        for office, supervisors in offices
    }
    found = {g.name: g for g in Group.objects.filter(name__in=[*names, *office_names])}
    groups = [found.get(name) or institution.group(kind) for name, kind in names.items()]
    for name in office_names:
        groups.append(found.get(name) or Group.objects.get_or_create(name=name)[0])
    return groups


def _grant(row_model, holder_field: str, holders, obj, codenames) -> None:
    """Every (holder, permission) row on ``obj`` in one INSERT; existing rows are kept (idempotent)."""
    perms = _permissions(type(obj), codenames)
    row_model.objects.bulk_create(
        [row_model(**{holder_field: h}, permission=p, content_object=obj) for h in holders for p in perms],
        ignore_conflicts=True,
    )


def grant_case_owner_institution(*, case: Case, actor) -> None:
    """The owner institution's (national) supervisors and service account see every case of it; the
    supervisors of the creating user's office see the cases of their office's staff."""
    office = actor.user.office if actor.user is not None and actor.user.office_id else None
    groups = _groups(case.institution, CASE_GROUP_KINDS, [(office, True)] if office else ())
    _grant(CaseGroupObjectPermission, "group", groups, case, CASE_PERMS)
    for group in groups:
        _audit(actor, "permission.granted", case, case.pk, [case.institution], group.name, CASE_PERMS)


def grant_case_user(*, case: Case, user: User, actor) -> None:
    """Owner or collaborator: need-to-know access for one caseworker."""
    _grant(CaseUserObjectPermission, "user", [user], case, CASE_PERMS)
    _audit(actor, "permission.granted", case, case.pk, [case.institution], f"user:{user.pk}", CASE_PERMS)


def grant_receiver(*, referral: Referral, actor) -> None:
    """Sending grants the receiving institution's (national) intake, supervisors and service account, and
    the receiving office's group (its caseworkers and supervisors) when the referral is at an office."""
    office = referral.to_office if referral.to_office_id else None
    groups = _groups(referral.to_institution, RECEIVER_GROUP_KINDS, [(office, False)] if office else ())
    _grant(ReferralGroupObjectPermission, "group", groups, referral, RECEIVER_PERMS)
    for group in groups:
        _audit(
            actor,
            "permission.granted",
            referral,
            referral.case_id,
            parties(referral),
            group.name,
            RECEIVER_PERMS,
        )


def grant_receiver_user(*, referral: Referral, user: User, actor) -> None:
    """The accepting (assigned) caseworker."""
    _grant(ReferralUserObjectPermission, "user", [user], referral, RECEIVER_PERMS)
    _audit(
        actor,
        "permission.granted",
        referral,
        referral.case_id,
        parties(referral),
        f"user:{user.pk}",
        RECEIVER_PERMS,
    )


def revoke_receiver_user(*, referral: Referral, user_id, actor) -> None:
    """A reassigned caseworker loses the grants the assignment gave them (the institution's groups keep
    theirs: the team still sees the referral through its intake group)."""
    deleted, _rows = ReferralUserObjectPermission.objects.filter(
        content_object=referral, user_id=user_id, permission__codename__in=RECEIVER_PERMS
    ).delete()
    if deleted:
        _audit(
            actor,
            "permission.revoked",
            referral,
            referral.case_id,
            parties(referral),
            f"user:{user_id}",
            RECEIVER_PERMS,
        )


def revoke_receiver(*, referral: Referral, actor) -> None:
    """Rejection, cancellation, voiding, consent withdrawal: the receiver keeps metadata only."""
    user_ids = list(
        ReferralUserObjectPermission.objects.filter(content_object=referral)
        .values_list("user_id", flat=True)
        .distinct()
    )
    ReferralUserObjectPermission.objects.filter(
        content_object=referral, permission__codename__in=RECEIVER_REVOCABLE
    ).delete()
    ReferralGroupObjectPermission.objects.filter(
        content_object=referral, permission__codename__in=RECEIVER_REVOCABLE
    ).delete()
    _audit(
        actor,
        "permission.revoked",
        referral,
        referral.case_id,
        parties(referral),
        f"institution:{referral.to_institution.code}" + (f"+{len(user_ids)} users" if user_ids else ""),
        RECEIVER_REVOCABLE,
    )


def receiver_holds_personal(referral: Referral) -> bool:
    """Whether a grant to read the referral's personal data (or to act on it) is left to any receiver."""
    return (
        ReferralGroupObjectPermission.objects.filter(
            content_object=referral, permission__codename__in=RECEIVER_REVOCABLE
        ).exists()
        or ReferralUserObjectPermission.objects.filter(
            content_object=referral, permission__codename__in=RECEIVER_REVOCABLE
        ).exists()
    )


def move_receiver_office(*, referral: Referral, previous: Office | None, actor) -> None:
    """Routing (contract §7.2): the grants follow the office — the previous office's group loses what it
    held on the referral, the new office's group (``referral.to_office``; none: national intake, which
    already holds them) gains what the institution's intake group holds now."""
    institution = referral.to_institution
    if previous is not None:
        name = office_group_name(institution.code, previous.code)
        deleted, _rows = ReferralGroupObjectPermission.objects.filter(
            content_object=referral, group__name=name
        ).delete()
        if deleted:
            _audit(
                actor,
                "permission.revoked",
                referral,
                referral.case_id,
                parties(referral),
                name,
                RECEIVER_PERMS,
            )
    if referral.to_office_id is None:
        return
    intake = _groups(institution, (GroupKind.INTAKE,))[0]
    held = list(
        ReferralGroupObjectPermission.objects.filter(content_object=referral, group=intake).values_list(
            "permission__codename", flat=True
        )
    )
    if not held:
        return
    group = _groups(institution, (), [(referral.to_office, False)])[0]
    _grant(ReferralGroupObjectPermission, "group", [group], referral, held)
    _audit(actor, "permission.granted", referral, referral.case_id, parties(referral), group.name, held)
