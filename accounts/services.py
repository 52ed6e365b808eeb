"""Writes on institutions, staff, their second factor and API clients: each one transaction, audited.

The web door's account pages (sign-in, enrolment, an admin's staff management, a user's language) call
these; no door records an account event of its own."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.recorder import record

from . import policy
from .actor import Actor, system_actor
from .choices import GroupKind, Province, Role, Scope, Service
from .models import (
    USERNAME_VALIDATOR,
    ApiClient,
    Institution,
    Office,
    User,
    hash_token,
    office_code_validator,
)

ROLE_GROUPS = {
    Role.CASEWORKER: (GroupKind.CASEWORKERS, GroupKind.INTAKE),
    Role.SUPERVISOR: (GroupKind.SUPERVISORS,),
    Role.ADMIN: (GroupKind.ADMINS,),
}


#: The groups of a member of an office (contract §7.2: need to know inside an institution). Its caseworkers
#: and supervisors are in the office's intake group, never in the institution's ``intake`` or
#: ``supervisors`` groups (those see every referral the institution receives: national staff).
OFFICE_ROLE_GROUPS = {
    Role.CASEWORKER: (GroupKind.CASEWORKERS,),
    Role.SUPERVISOR: (),
    Role.ADMIN: (GroupKind.ADMINS,),
}


def user_group_ids(user: User) -> set[int]:
    """The permission groups a user belongs to by institution, role and office (none when inactive)."""
    if not (user.institution_id and user.is_active):
        return set()
    if user.office_id is None:
        return {user.institution.group(kind).id for kind in ROLE_GROUPS.get(user.role, ())}
    wanted = {user.institution.group(kind).id for kind in OFFICE_ROLE_GROUPS.get(user.role, ())}
    if user.role in (Role.CASEWORKER, Role.SUPERVISOR):
        wanted.add(user.office.group().id)
    if user.role == Role.SUPERVISOR:
        wanted.add(user.office.group(supervisors=True).id)
    return wanted


def sync_user_groups(*, user: User) -> None:
    """A user is in exactly the groups of their institution, role and office (every national caseworker is
    in intake; an office's caseworkers and supervisors in the office's group)."""
    managed = [g for g in user.groups.all() if ":" in g.name]
    wanted = user_group_ids(user)
    for group in managed:
        if group.id not in wanted:
            user.groups.remove(group)
    have = {g.id for g in managed}
    for group_id in wanted - have:
        user.groups.add(group_id)


@transaction.atomic
def institution_create(*, code: str, name: str) -> tuple[Institution, bool]:
    """Create (or find) an institution and its permission groups; idempotent. A code of a remote institution
    (hosted by a peer node, contract §7.4) is refused (``ValidationError``, code ``remote-institution``)."""
    institution, created = Institution.objects.get_or_create(code=code, defaults={"name": name})
    institution.check_hosted_here("code")
    for kind in GroupKind:
        institution.group(kind)
    return institution, created


def parse_scopes(raw: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in (raw.split(",") if isinstance(raw, str) else raw) if s.strip()]
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValueError("unknown scopes: " + ", ".join(unknown) + "; valid: " + ", ".join(Scope.values))
    return sorted(set(scopes))


def _system_or(actor: Actor | None, institution: Institution) -> Actor:
    """The caller's actor; none means a trusted process inside the installation (the demo seed, a test)."""
    return actor if actor is not None else system_actor(institution)


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied("not allowed for this actor")


def validate_expiry(expires_at) -> None:
    """An API client's expiry, when given, is in the future."""
    from django.utils import timezone

    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": [_("Choose a date in the future.")]}, code="expiry-past")


def validate_new_username(username: str) -> None:
    """The rules of a new staff username: its form, and not taken (by anyone, in any institution)."""
    try:
        USERNAME_VALIDATOR(username)
    except ValidationError as exc:
        raise ValidationError({"username": exc.error_list}) from None
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": [_("This username is already taken.")]}, code="username-taken")


def validate_new_password(password: str, user: User) -> None:
    """Django's configured password validators (``AUTH_PASSWORD_VALIDATORS``) decide, at every door."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from None


@transaction.atomic
def api_client_create(
    *, institution: Institution, name: str, scopes: list[str], expires_at=None, actor: Actor | None = None
):
    """A new API client; returns ``(client, token)`` — the token exists only in this return value."""
    institution.check_hosted_here("institution")
    actor = _system_or(actor, institution)
    _require(policy.may_manage_api_clients(actor, institution=institution))
    validate_expiry(expires_at)
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
def api_client_revoke(*, client: ApiClient, actor: Actor | None = None) -> bool:
    """Revoke a client of the actor's institution; False when it was already revoked (nothing recorded)."""
    from django.utils import timezone

    actor = _system_or(actor, client.institution)
    _require(policy.may_manage_api_clients(actor, client))
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    if client.revoked_at is not None:
        return False
    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    record(
        actor=actor,
        action="api_client.revoked",
        object_type="api_client",
        object_id=client.pk,
        institutions=[client.institution],
    )
    return True


#: ``staff_user_create(office=...)`` not given: a new user is national, an existing one keeps their office.
KEEP_OFFICE = object()


@transaction.atomic
def staff_user_create(
    *,
    institution: Institution,
    username: str,
    role: str,
    password: str | None = None,
    email: str = "",
    language: str = "es",
    actor: Actor | None = None,
    office: Office | None | object = KEEP_OFFICE,
) -> User:
    """Create a staff member of an institution with one role, or update one of that institution.

    ``office``: the office they work in (``None``: national staff); left as it is when not given.

    An existing username of another institution (or of none, e.g. a superuser) is refused with a
    ``ValidationError`` (code ``other-institution``), never moved: moving a person between institutions
    would silently hand over their grants and history. Recorded as ``user.created`` or ``user.changed``.
    """
    institution.check_hosted_here("institution")
    actor = _system_or(actor, institution)
    role = Role(role)
    if language not in ("es", "en"):
        raise ValidationError({"language": ["Unsupported language."]}, code="language")
    user = User.objects.select_for_update().filter(username=username).first()
    if user is not None and user.institution_id != institution.pk:
        current = user.institution.code if user.institution_id else "no institution"
        raise ValidationError(
            f"The user {username} already exists and belongs to {current}, not {institution.code}; "
            "a user is never moved to another institution. Choose another username.",
            code="other-institution",
        )
    created = user is None
    if created:
        _require(policy.may_manage_staff(actor) and actor.institution.pk == institution.pk)
        validate_new_username(username)
        user = User(username=username, institution=institution)
    else:
        _require(policy.may_change_role(actor, user, role))
    if password:
        validate_new_password(password, User(username=username, email=email or user.email))
    before = {"role": user.role, "email": user.email, "language": user.language, "office": user.office_id}
    if office is not KEEP_OFFICE:
        if office is not None and office.institution_id != institution.pk:
            raise ValidationError(
                {"office": [_("Choose an office of the user's institution.")]}, code="office"
            )
        user.office = office
    user.role = role
    user.email = email or user.email
    user.language = language
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.full_clean(exclude=["password", "username"])
    user.save()
    after = {"role": user.role, "email": user.email, "language": user.language, "office": user.office_id}
    changed = sorted(k for k, v in before.items() if after[k] != v)
    if password:
        changed.append("password")
    record(
        actor=actor,
        action="user.created" if created else "user.changed",
        object_type="user",
        object_id=user.pk,
        institutions=[institution],
        detail={"role": user.role} if created else {"role": user.role, "fields": changed},
    )
    return user


#: What the Django admin saves of its own (forms Django builds): the action recorded for each.
OPERATOR_ACTIONS = {
    ("user", True): "user.created",
    ("user", False): "user.changed",
    ("institution", True): "institution.created",
    ("institution", False): "institution.updated",
}


@transaction.atomic
def operator_change_record(*, actor: Actor, object_type: str, obj, created: bool, fields: list[str]) -> None:
    """The audit event of a form saved in the Django admin (an operator's addition or change): the names of
    the changed fields, never their values (a new password is "password", not the password)."""
    institution = obj if object_type == "institution" else obj.institution
    if object_type == "user":
        _require(policy.may_manage_staff(actor, obj))
    elif not policy.may_manage_staff(actor):
        raise PermissionDenied("not allowed for this actor")
    record(
        actor=actor,
        action=OPERATOR_ACTIONS[(object_type, created)],
        object_type=object_type,
        object_id=obj.pk,
        institutions=[institution] if institution is not None else [],
        detail={"fields": sorted(fields)},
    )


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
    """The language the user reads the application in (remembered for every later request): one's own —
    the caller passes the signed-in user. An admin sets their staff's through ``staff_user_save``."""
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
    office: Office | None | object = KEEP_OFFICE,
) -> User:
    """Create a staff member of the admin's institution, or change one's role, e-mail, language and office
    (``office``: an office of the institution, ``None`` national; not given: left as it is)."""
    if not is_new and not User.objects.filter(username=username, institution=actor.institution).exists():
        raise PermissionDenied("not a user of the actor's institution")
    if is_new:
        validate_new_username(username)
    return staff_user_create(
        institution=actor.institution,
        username=username,
        role=role,
        password=password or None,
        email=email,
        language=language,
        actor=actor,
        office=office,
    )


@transaction.atomic
def staff_user_set_active(*, actor: Actor, user: User, active: bool) -> bool:
    """Deactivate (or reactivate) a staff member: a deactivated user can no longer sign in, and leaves
    every permission group of the institution (the accounts signal re-syncs the groups on save).

    Nobody deactivates themselves (``ValidationError``, code ``self-deactivation``). False when nothing
    changed (nothing recorded)."""
    _require(policy.may_manage_staff(actor, user))
    if not active and not policy.may_deactivate(actor, user):
        raise ValidationError("an account cannot be deactivated by itself", code="self-deactivation")
    if user.is_active == active:
        return False
    user.is_active = active
    user.save(update_fields=["is_active"])
    record(
        actor=actor,
        action="user.activated" if active else "user.deactivated",
        object_type="user",
        object_id=user.pk,
        institutions=[user.institution],
    )
    return True


@transaction.atomic
def staff_user_reset_second_factor(*, actor: Actor, user: User, devices=None) -> int:
    """Remove a staff member's second-factor devices (a lost phone): they enrol a new one at their next
    sign-in. ``devices``: only these (the Django admin deletes one device at a time)."""
    _require(policy.may_reset_second_factor(actor, user))
    if devices is None:
        removed, _by_model = TOTPDevice.objects.filter(user=user).delete()
        detail = {"devices": removed}
    else:
        removed = 0
        for device in devices:
            if device.user_id != user.pk:
                raise PermissionDenied("not a device of this user")
            device.delete()
            removed += 1
        detail = {"devices": removed, "device_type": devices[0]._meta.model_name if devices else ""}
    record(
        actor=actor,
        action="user.second_factor_reset",
        object_type="user",
        object_id=user.pk,
        institutions=[user.institution],
        detail=detail,
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


@dataclass(frozen=True)
class SecondFactorOutcome:
    """What the second sign-in step decided (the door keeps ``failures`` in the session)."""

    device: TOTPDevice | None
    failures: int
    #: Too many wrong codes in this sign-in: the session is closed, sign in again.
    locked: bool = False
    #: The right code, but already used: a TOTP code is good once (one sign-in per 30-second window).
    reused: bool = False
    #: The code was not even checked: the device refuses codes for a few seconds after wrong ones.
    throttled: bool = False


def _already_used(device: TOTPDevice, token: str) -> bool:
    """A code the device refused is one of its current ones: it was refused because it was already
    accepted once (django-otp accepts each time step's code once: ``last_t``)."""
    try:
        value = int(token)
    except ValueError:
        return False
    check = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    check.time = time.time()
    return bool(check.verify(value, device.tolerance))


def second_factor_verify(
    *, user: User, token: str, failures: int = 0, ip: str | None = None, request_id: str = ""
) -> SecondFactorOutcome:
    """The second sign-in step: check ``token`` against the user's confirmed devices, record the outcome
    (``auth.otp_verified`` / ``auth.otp_failed``) and decide whether this sign-in is locked
    (``policy.second_factor_locked``) after ``failures`` earlier wrong codes."""
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"))
    throttled = bool(devices) and not any(d.verify_is_allowed()[0] for d in devices)
    device = next((d for d in devices if d.verify_token(token)), None)
    record_otp(user=user, ok=device is not None, ip=ip, request_id=request_id)
    if device is not None:
        return SecondFactorOutcome(device=device, failures=0)
    failures += 1
    return SecondFactorOutcome(
        device=None,
        failures=failures,
        locked=policy.second_factor_locked(failures),
        reused=not throttled and any(_already_used(d, token) for d in devices),
        throttled=throttled,
    )


def record_otp(*, user: User, ok: bool, ip: str | None = None, request_id: str = "") -> None:
    """The outcome of the second sign-in step."""
    record(
        action="auth.otp_verified" if ok else "auth.otp_failed",
        outcome="success" if ok else "denied",
        ip=ip,
        request_id=request_id,
        **_user_fields(user),
    )


# --- offices (contract §7.2) ------------------------------------------------------------------------------

LANGUAGE_CODE_RE = r"^[a-z]{2,3}$"


def _code_list(value) -> list[str] | None:
    """A list of codes without repeats, or None when it is not a list of strings."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return None
    return list(dict.fromkeys(value))


def check_office_fields(*, code: str, name: str, province: str, services, languages) -> dict:
    """The checked fields of an office, or a ``ValidationError`` naming each wrong field (every door)."""
    errors: dict[str, list] = {}
    try:
        office_code_validator(code)
    except ValidationError as exc:
        errors["code"] = exc.messages
    name = (name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = [_("A name of 1–200 characters.")]
    if province not in Province.values:
        errors["province"] = [_("Choose a province of Panama (PA-1 … PA-10, PA-EM, PA-KY, PA-NB, PA-NT).")]
    services = _code_list(services)
    if not services or any(s not in Service.values for s in services):
        errors["services"] = [_("Choose one or more services of the list.")]
    languages = _code_list(languages)
    if languages is None or any(not re.fullmatch(LANGUAGE_CODE_RE, c) for c in languages):
        errors["languages"] = [_("Languages are ISO 639-1 or 639-3 codes (es, en, gym …).")]
    if errors:
        raise ValidationError(errors, code="office")
    return {"name": name, "province": province, "services": services, "languages": languages}


@transaction.atomic
def office_save(
    *,
    institution: Institution,
    code: str,
    name: str,
    province: str,
    services: list[str],
    languages: list[str] | None = None,
    actor: Actor | None = None,
) -> tuple[Office, bool]:
    """Create an office of ``institution``, or update the one with that code (idempotent): returns
    ``(office, created)``. Recorded as ``office.created`` or ``office.changed`` (with the names of the
    changed fields; nothing when nothing changed). A code never changes: it names the office. Not for a
    remote institution (its offices come from its node: :func:`remote_offices_save`)."""
    institution.check_hosted_here("institution")
    actor = _system_or(actor, institution)
    _require(policy.may_manage_offices(actor, institution=institution))
    fields = check_office_fields(
        code=code, name=name, province=province, services=services, languages=languages
    )
    office = Office.objects.select_for_update().filter(institution=institution, code=code).first()
    created = office is None
    if created:
        office = Office(institution=institution, code=code, **fields)
        office.save(force_insert=True)
        office.group()
        office.group(supervisors=True)
        changed = sorted(fields)
    else:
        changed = sorted(k for k, v in fields.items() if getattr(office, k) != v)
        if not changed:
            return office, False
        for key, value in fields.items():
            setattr(office, key, value)
        office.updated_at = timezone.now()
        office.save(update_fields=[*changed, "updated_at"])
    record(
        actor=actor,
        action="office.created" if created else "office.changed",
        object_type="office",
        object_id=office.pk,
        institutions=[institution],
        detail={"code": office.code, "fields": changed},
    )
    return office, created


@transaction.atomic
def office_pause(*, office: Office, until=None, reason: str = "", actor: Actor | None = None) -> Office:
    """Stop an office accepting referrals (contract §7.2), until ``until`` (a date; ``None``: until resumed),
    with a reason shown to senders (about the office, never a person: not recorded in the audit detail)."""
    office.institution.check_hosted_here("institution")
    actor = _system_or(actor, office.institution)
    _require(policy.may_manage_offices(actor, office))
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise ValidationError({"pause_reason": [_("At most 200 characters.")]}, code="pause-reason")
    if until is not None and until < timezone.localdate():
        raise ValidationError({"paused_until": [_("Choose today or a later date.")]}, code="paused-until")
    office = Office.objects.select_for_update().get(pk=office.pk)
    office.accepting_referrals = False
    office.paused_until = until
    office.pause_reason = reason
    office.updated_at = timezone.now()
    office.save(update_fields=["accepting_referrals", "paused_until", "pause_reason", "updated_at"])
    record(
        actor=actor,
        action="office.paused",
        object_type="office",
        object_id=office.pk,
        institutions=[office.institution],
        detail={"code": office.code, "until": until.isoformat() if until else ""},
    )
    return office


@transaction.atomic
def office_resume(*, office: Office, actor: Actor | None = None) -> bool:
    """The office accepts referrals again; False when it was not paused (nothing recorded)."""
    office.institution.check_hosted_here("institution")
    actor = _system_or(actor, office.institution)
    _require(policy.may_manage_offices(actor, office))
    office = Office.objects.select_for_update().get(pk=office.pk)
    if office.accepting_referrals:
        return False
    office.accepting_referrals = True
    office.paused_until = None
    office.pause_reason = ""
    office.updated_at = timezone.now()
    office.save(update_fields=["accepting_referrals", "paused_until", "pause_reason", "updated_at"])
    record(
        actor=actor,
        action="office.resumed",
        object_type="office",
        object_id=office.pk,
        institutions=[office.institution],
        detail={"code": office.code},
    )
    return True


# --- offices of remote institutions (contract §7.2/§7.4: peers serve their own offices to each other) ------

#: What a peer node says of each office it serves (``federation.directory``): no personal data.
REMOTE_OFFICE_FIELDS = frozenset(
    {"institution", "code", "name", "province", "services", "languages"}
    | {"accepting_referrals", "paused_until"}
)


def _remote_office_fields(entry) -> dict | None:
    """The checked fields of one office a peer serves, or None when it breaks a rule of ours (the same
    rules as every door's, ``check_office_fields``; ``paused_until`` a date or None)."""
    if not isinstance(entry, dict) or set(entry) != REMOTE_OFFICE_FIELDS:
        return None
    if not isinstance(entry["institution"], str) or not isinstance(entry["code"], str):
        return None
    accepting, paused_until = entry["accepting_referrals"], entry["paused_until"]
    if not isinstance(accepting, bool) or not (paused_until is None or isinstance(paused_until, date)):
        return None
    try:
        fields = check_office_fields(
            code=entry["code"],
            name=entry["name"] if isinstance(entry["name"], str) else "",
            province=entry["province"],
            services=entry["services"],
            languages=entry["languages"],
        )
    except (ValidationError, TypeError):
        return None
    return {**fields, "accepting_referrals": accepting, "paused_until": paused_until}


@transaction.atomic
def remote_institution_names_save(*, node: str, names: list) -> list[str]:
    """The names a peer node gives the institutions it hosts (``[{"code", "name"}]``), taken for the remote
    institutions of that node still named by their code (pinning names them so): a name an operator gave
    here is kept. Entries for institutions the node does not host, or not 1–200 printable characters, are
    ignored. Returns the codes renamed; audited ``institution.named_from_peer`` when there are some."""
    wanted = {}
    for entry in names if isinstance(names, list) else ():
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("code"), str)
            and isinstance(entry.get("name"), str)
        ):
            name = entry["name"].strip()
            if 1 <= len(name) <= 200 and name.isprintable():
                wanted[entry["code"]] = name
    renamed = []
    for institution in (
        Institution.objects.remote().filter(node=node, code__in=list(wanted)).select_for_update()
    ):
        if institution.name == institution.code and wanted[institution.code] != institution.name:
            institution.name = wanted[institution.code]
            institution.save(update_fields=["name"])
            renamed.append(institution.code)
    if renamed:
        record(
            action="institution.named_from_peer",
            actor_type="system",
            actor_label="federation directory",
            object_type="institution",
            institutions=list(Institution.objects.local().values_list("code", flat=True)),
            detail={"node": node, "codes": renamed},
        )
    return renamed


@transaction.atomic
def remote_offices_save(*, node: str, offices: list) -> dict:
    """Store the offices a peer node serves for the institutions it hosts (``node``: its URL), as
    ``Office`` rows of those remote institutions: created or updated by (institution, code); an office of
    them that the node no longer serves is kept (referrals and statistics name it) but marked not accepting
    referrals. An entry for an institution the node does not host here, or breaking an office rule, is
    refused (counted, never stored): a peer speaks only for its own institutions.

    ``offices``: dicts of ``REMOTE_OFFICE_FIELDS`` (``paused_until`` a ``date`` or None). Returns
    ``{"created", "changed", "withdrawn": [office keys], "refused": count}``; recorded as
    ``office.synced_from_peer`` when something changed (keys and counts only)."""
    if not node:
        raise ValueError("a peer node's URL")
    institutions = {i.code: i for i in Institution.objects.remote().filter(node=node)}
    rows = Office.objects.select_for_update().select_related("institution").filter(institution__node=node)
    stored = {(o.institution.code, o.code): o for o in rows}
    now = timezone.now()
    outcome: dict = {"created": [], "changed": [], "withdrawn": [], "refused": 0}
    served: set[tuple[str, str]] = set()
    for entry in offices if isinstance(offices, list) else ():
        fields = _remote_office_fields(entry)
        institution = institutions.get(entry["institution"]) if fields is not None else None
        key = (entry["institution"], entry["code"]) if fields is not None else None
        if institution is None or key in served:
            outcome["refused"] += 1
            continue
        served.add(key)
        office = stored.get(key)
        if office is None:
            office = Office(institution=institution, code=key[1], created_at=now, updated_at=now, **fields)
            office.save(force_insert=True)
            outcome["created"].append(office.key)
            continue
        changed = sorted(k for k, v in fields.items() if getattr(office, k) != v)
        if changed:
            for name in changed:
                setattr(office, name, fields[name])
            office.updated_at = now
            office.save(update_fields=[*changed, "updated_at"])
            outcome["changed"].append(office.key)
    for key, office in stored.items():
        if key in served or key[0] not in institutions:
            continue
        if office.accepting_referrals or office.paused_until is not None:
            office.accepting_referrals, office.paused_until, office.updated_at = False, None, now
            office.save(update_fields=["accepting_referrals", "paused_until", "updated_at"])
            outcome["withdrawn"].append(office.key)
    for name in ("created", "changed", "withdrawn"):
        outcome[name].sort()
    if outcome["created"] or outcome["changed"] or outcome["withdrawn"]:
        record(
            action="office.synced_from_peer",
            actor_type="system",
            actor_label="federation directory",
            object_type="peer",
            institutions=list(Institution.objects.local()),
            detail={"node": node, **outcome},
        )
    return outcome
