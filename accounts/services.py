"""Writes on institutions, staff, their second factor and API clients: each one transaction, audited.

The web door's account pages (sign-in, enrolment, an admin's staff management, a user's language) call
these; no door records an account event of its own."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.recorder import record

from .actor import Actor
from .choices import GroupKind, Role, Scope
from .models import ApiClient, Institution, User, hash_token

ROLE_GROUPS = {
    Role.CASEWORKER: (GroupKind.CASEWORKERS, GroupKind.INTAKE),
    Role.SUPERVISOR: (GroupKind.SUPERVISORS,),
    Role.ADMIN: (GroupKind.ADMINS,),
}


def sync_user_groups(*, user: User) -> None:
    """A user is in exactly the groups of their institution and role (every caseworker is in intake)."""
    managed = [g for g in user.groups.all() if ":" in g.name]
    wanted: set[int] = set()
    if user.institution_id and user.is_active:
        wanted = {user.institution.group(kind).id for kind in ROLE_GROUPS.get(user.role, ())}
    for group in managed:
        if group.id not in wanted:
            user.groups.remove(group)
    have = {g.id for g in managed}
    for group_id in wanted - have:
        user.groups.add(group_id)


@transaction.atomic
def institution_create(*, code: str, name: str) -> tuple[Institution, bool]:
    """Create (or find) an institution and its permission groups; idempotent."""
    institution, created = Institution.objects.get_or_create(code=code, defaults={"name": name})
    for kind in GroupKind:
        institution.group(kind)
    return institution, created


def parse_scopes(raw: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in (raw.split(",") if isinstance(raw, str) else raw) if s.strip()]
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValueError("unknown scopes: " + ", ".join(unknown) + "; valid: " + ", ".join(Scope.values))
    return sorted(set(scopes))


@transaction.atomic
def api_client_create(*, institution: Institution, name: str, scopes: list[str], expires_at=None, actor=None):
    """A new API client; returns ``(client, token)`` — the token exists only in this return value."""
    token = ApiClient.new_token()
    client = ApiClient.objects.create(
        institution=institution,
        name=name,
        scopes=parse_scopes(scopes),
        token_prefix=token[:12],
        token_hash=hash_token(token),
        expires_at=expires_at,
    )
    institution.group(GroupKind.SERVICE)
    if actor is not None:
        record(
            actor=actor,
            action="api_client.created",
            object_type="api_client",
            object_id=client.pk,
            institutions=[institution],
            detail={"scopes": client.scopes},
        )
    return client, token


@transaction.atomic
def api_client_revoke(*, client: ApiClient, actor=None) -> None:
    from django.utils import timezone

    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    if actor is not None:
        record(
            actor=actor,
            action="api_client.revoked",
            object_type="api_client",
            object_id=client.pk,
            institutions=[client.institution],
        )


@transaction.atomic
def staff_user_create(
    *,
    institution: Institution,
    username: str,
    role: str,
    password: str | None = None,
    email: str = "",
    language: str = "es",
) -> User:
    """Create a staff member of an institution with one role, or update one of that institution.

    An existing username of another institution (or of none, e.g. a superuser) is refused with a
    ``ValidationError`` (code ``other-institution``), never moved: moving a person between institutions
    would silently hand over their grants and history.
    """
    role = Role(role)
    user, _created = User.objects.select_for_update().get_or_create(
        username=username, defaults={"institution": institution}
    )
    if not _created and user.institution_id != institution.pk:
        current = user.institution.code if user.institution_id else "no institution"
        raise ValidationError(
            f"The user {username} already exists and belongs to {current}, not {institution.code}; "
            "a user is never moved to another institution. Choose another username.",
            code="other-institution",
        )
    user.institution = institution
    user.role = role
    user.email = email or user.email
    user.language = language
    if password:
        user.set_password(password)
    elif _created:
        user.set_unusable_password()
    user.save()
    return user


def ensure_groups(institution: Institution) -> list[Group]:
    return [institution.group(kind) for kind in GroupKind]


# --- staff management, language and the second factor (the web door's account pages) -------------------


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
