"""Writes on institutions, staff and API clients."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.recorder import record

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
