"""Writes the web UI needs that the domain apps do not offer (yet): each one transaction, audited.

Nothing here touches cases or referrals: those go through ``referrals.services``.
"""

from __future__ import annotations

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.actor import Actor
from accounts.models import User
from accounts.services import staff_user_create
from audit.recorder import record


def _user_fields(user: User) -> dict:
    return {
        "actor_type": "user",
        "actor_id": str(user.pk),
        "actor_label": user.username,
        "actor_institution": user.institution.code if user.institution_id else "",
    }


@transaction.atomic
def user_language_set(*, user: User, language: str) -> None:
    """The language the user reads the application in (remembered for every later request)."""
    if language not in ("es", "en"):
        raise ValueError("unsupported language")
    user.language = language
    user.save(update_fields=["language"])


@transaction.atomic
def staff_user_save(
    *,
    actor: Actor,
    username: str,
    role: str,
    email: str = "",
    language: str = "es",
    password: str | None = None,
    is_new: bool,
) -> User:
    """Create a staff member of the admin's institution, or change one's role, e-mail and language."""
    if not is_new and not User.objects.filter(username=username, institution=actor.institution).exists():
        raise User.DoesNotExist
    if is_new and User.objects.filter(username=username).exists():
        raise ValueError("username taken")
    user = staff_user_create(
        institution=actor.institution,
        username=username,
        role=role,
        password=password or None,
        email=email,
        language=language,
    )
    record(
        actor=actor,
        action="user.created" if is_new else "user.updated",
        object_type="user",
        object_id=user.pk,
        institutions=[actor.institution],
        detail={"role": user.role},
    )
    return user


@transaction.atomic
def staff_user_set_active(*, actor: Actor, user: User, active: bool) -> None:
    """Deactivate (or reactivate) a staff member: a deactivated user can no longer sign in, and leaves
    every permission group of the institution (the accounts signal re-syncs the groups on save)."""
    if user.institution_id != actor.institution.pk:
        raise User.DoesNotExist
    if actor.user is not None and user.pk == actor.user.pk and not active:
        raise ValueError("an admin cannot deactivate themselves")
    user.is_active = active
    user.save(update_fields=["is_active"])
    record(
        actor=actor,
        action="user.activated" if active else "user.deactivated",
        object_type="user",
        object_id=user.pk,
        institutions=[actor.institution],
    )


@transaction.atomic
def staff_user_reset_second_factor(*, actor: Actor, user: User) -> int:
    """Remove a staff member's TOTP devices (a lost phone): they enrol a new one at their next sign-in."""
    if user.institution_id != actor.institution.pk:
        raise User.DoesNotExist
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    record(
        actor=actor,
        action="user.second_factor_reset",
        object_type="user",
        object_id=user.pk,
        institutions=[actor.institution],
        detail={"devices": removed},
    )
    return removed


@transaction.atomic
def totp_enrolment_device(*, user: User) -> TOTPDevice:
    """The unconfirmed device of a first enrolment (the same one until confirmed: a reload keeps the QR)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="app", confirmed=False)
    return device


@transaction.atomic
def totp_enrolment_confirm(*, user: User, device: TOTPDevice, token: str) -> bool:
    """Confirm the device with a first code from the authenticator app."""
    if device.user_id != user.pk or device.confirmed or not device.verify_token(token):
        record(action="auth.otp_failed", outcome="denied", detail={"step": "enrolment"}, **_user_fields(user))
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    record(action="auth.otp_enrolled", object_type="user", object_id=user.pk, **_user_fields(user))
    return True


def record_otp(*, user: User, ok: bool, ip: str | None = None, request_id: str = "") -> None:
    """The outcome of the second sign-in step."""
    record(
        action="auth.otp_verified" if ok else "auth.otp_failed",
        outcome="success" if ok else "denied",
        ip=ip,
        request_id=request_id,
        **_user_fields(user),
    )
