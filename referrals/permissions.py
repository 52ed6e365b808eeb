"""Object permissions (django-guardian, direct FK models). Only services call these."""

from __future__ import annotations

from guardian.shortcuts import assign_perm, remove_perm

from accounts.choices import GroupKind
from accounts.models import User
from audit.recorder import record

from .models import Case, Referral, ReferralGroupObjectPermission, ReferralUserObjectPermission

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


def grant_case_owner_institution(*, case: Case, actor) -> None:
    """The owner institution's supervisors and service account see every case of it."""
    for kind in CASE_GROUP_KINDS:
        group = case.institution.group(kind)
        for perm in CASE_PERMS:
            assign_perm(perm, group, case)
        _audit(actor, "permission.granted", case, case.pk, [case.institution], group.name, CASE_PERMS)


def grant_case_user(*, case: Case, user: User, actor) -> None:
    """Owner or collaborator: need-to-know access for one caseworker."""
    for perm in CASE_PERMS:
        assign_perm(perm, user, case)
    _audit(actor, "permission.granted", case, case.pk, [case.institution], f"user:{user.pk}", CASE_PERMS)


def grant_receiver(*, referral: Referral, actor) -> None:
    """Sending grants the receiving institution's intake, supervisors and service account."""
    for kind in RECEIVER_GROUP_KINDS:
        group = referral.to_institution.group(kind)
        for perm in RECEIVER_PERMS:
            assign_perm(perm, group, referral)
        _audit(
            actor,
            "permission.granted",
            referral,
            referral.case_id,
            [referral.from_institution, referral.to_institution],
            group.name,
            RECEIVER_PERMS,
        )


def grant_receiver_user(*, referral: Referral, user: User, actor) -> None:
    """The accepting (assigned) caseworker."""
    for perm in RECEIVER_PERMS:
        assign_perm(perm, user, referral)
    _audit(
        actor,
        "permission.granted",
        referral,
        referral.case_id,
        [referral.from_institution, referral.to_institution],
        f"user:{user.pk}",
        RECEIVER_PERMS,
    )


def revoke_receiver(*, referral: Referral, actor) -> None:
    """Rejection, cancellation, voiding, consent withdrawal: the receiver keeps metadata only."""
    for kind in RECEIVER_GROUP_KINDS:
        group = referral.to_institution.group(kind)
        for perm in RECEIVER_REVOCABLE:
            remove_perm(perm, group, referral)
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
        [referral.from_institution, referral.to_institution],
        f"institution:{referral.to_institution.code}" + (f"+{len(user_ids)} users" if user_ids else ""),
        RECEIVER_REVOCABLE,
    )
