"""The actor: who is acting, for which institution — built once per request and passed down explicitly."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.db.models.signals import post_delete, post_migrate, post_save

from .choices import GroupKind, Role, Scope
from .models import ApiClient, Institution, User

ROLE_SCOPES = {
    Role.CASEWORKER: {Scope.REFERRALS_READ, Scope.REFERRALS_WRITE},
    Role.SUPERVISOR: {
        Scope.REFERRALS_READ,
        Scope.REFERRALS_WRITE,
        Scope.REFERRALS_VOID,
        Scope.AUDIT_READ,
        Scope.STATISTICS_READ,
    },
    Role.ADMIN: {Scope.REFERRALS_READ, Scope.AUDIT_READ, Scope.WEBHOOKS_MANAGE, Scope.STATISTICS_READ},
}


@dataclass(frozen=True)
class Actor:
    """A user or an API client, with its institution, effective scopes and permission groups."""

    institution: Institution
    user: User | None = None
    api_client: ApiClient | None = None
    scopes: frozenset[str] = frozenset()
    group_ids: tuple[int, ...] = ()
    request_id: str = ""
    ip: str | None = None
    extra: dict = field(default_factory=dict, compare=False)
    #: A trusted process acting on ``institution`` (a management command, the demo seed): its label, e.g.
    #: ``"manage.py create_staff_user"``. Audited with actor type ``system`` (contract §7.1).
    system: str = ""
    #: A superuser acting in the Django admin on ``institution`` (the institution concerned, not theirs).
    operator: bool = False
    #: The URL of the peer node acting for ``institution`` (a remote institution, contract §7.4): its
    #: message carries the user or client who acted there, audited here as ``remote_kind``/``remote_id``.
    node: str = ""
    remote_kind: str = ""
    remote_id: str = ""
    remote_label: str = ""

    @property
    def kind(self) -> str:
        if self.node:
            return self.remote_kind or "system"
        if self.system:
            return "system"
        return "user" if self.user is not None else "api_client"

    @property
    def id(self):
        if self.node:
            return self.remote_id
        if self.system:
            return ""
        return self.user.pk if self.user is not None else self.api_client.pk

    @property
    def role(self) -> str:
        if self.node or self.system:
            return "system"
        return self.user.role if self.user is not None else "service"

    @property
    def audit_institution_code(self) -> str:
        """The actor's institution in the audit log: an operator's own (or none), otherwise the actor's
        institution — for a system actor, the institution concerned, so that its auditors see the event."""
        if self.operator:
            return self.user.institution.code if self.user.institution_id else ""
        return self.institution.code

    @property
    def is_supervisor(self) -> bool:
        return self.user is not None and self.user.role == Role.SUPERVISOR

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def label(self) -> str:
        """A non-personal label: username or client name are staff identifiers, not migrant data."""
        if self.node:
            return (self.remote_label or self.remote_kind or "node")[:120] + f" @ {self.node}"
        if self.system:
            return self.system
        return self.user.username if self.user is not None else f"api:{self.api_client.name}"


def system_actor(institution: Institution, label: str = "system") -> Actor:
    """A trusted process of the installation (a management command, the demo seed, a test) acting on
    ``institution``'s accounts."""
    return Actor(institution=institution, system=label)


def operator_actor(request, institution: Institution | None) -> Actor:
    """The signed-in superuser of the Django admin acting on ``institution`` (the operators' site has already
    required a superuser with a verified second factor). ``None``: an account of no institution (another
    superuser's)."""
    return Actor(
        institution=institution,
        user=request.user,
        operator=True,
        request_id=getattr(request, "request_id", ""),
        ip=client_ip(request),
    )


def actor_for_user(user: User, *, request_id: str = "", ip: str | None = None) -> Actor:
    return Actor(
        institution=user.institution,
        user=user,
        scopes=frozenset(ROLE_SCOPES.get(user.role, set())),
        group_ids=tuple(user.groups.values_list("id", flat=True)),
        request_id=request_id,
        ip=ip,
    )


#: How long a process trusts its remembered service-group id (bounds staleness after another process
#: deleted and re-created a group; within this process every change clears the cache at once).
SERVICE_GROUP_TTL_SECONDS = 300.0

#: ``(institution id, code) → (service group id, expiry on the monotonic clock)``, per process.
_service_group_ids: dict[tuple[int, str], tuple[int, float]] = {}


def service_group_id(institution: Institution) -> int:
    """The id of the institution's service group (API clients act through it), remembered per process.

    Saves a ``get_or_create`` query on every API request. The group of an institution never changes in
    normal operation; when a group or an institution is saved or deleted, or the database is migrated
    (tests flush and re-create them with new ids), the whole cache is dropped (signals below).
    """
    key = (institution.pk, institution.code)
    now = time.monotonic()
    cached = _service_group_ids.get(key)
    if cached is not None and cached[1] > now:
        return cached[0]
    group_id = institution.group(GroupKind.SERVICE).id
    _service_group_ids[key] = (group_id, now + SERVICE_GROUP_TTL_SECONDS)
    return group_id


def clear_service_group_cache(**_kwargs) -> None:
    _service_group_ids.clear()


for _signal, _sender in (
    (post_save, Group),
    (post_delete, Group),
    (post_save, Institution),
    (post_delete, Institution),
):
    _signal.connect(
        clear_service_group_cache,
        sender=_sender,
        weak=False,
        dispatch_uid=f"actor-service-group-{_signal is post_save}-{_sender.__name__}",
    )
post_migrate.connect(clear_service_group_cache, weak=False, dispatch_uid="actor-service-group-migrate")


def actor_for_api_client(client: ApiClient, *, request_id: str = "", ip: str | None = None) -> Actor:
    return Actor(
        institution=client.institution,
        api_client=client,
        scopes=frozenset(client.scopes),
        group_ids=(service_group_id(client.institution),),
        request_id=request_id,
        ip=ip,
    )


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _second_factor_ok(request, user: User) -> bool:
    """A session of a user whose role requires two-factor counts only once the OTP step is done.

    django-otp's middleware sets ``is_verified`` on every session user; a user object without it was not
    authenticated by a session (e.g. DRF's force_authenticate in tests).
    """
    if not user.requires_2fa:
        return True
    is_verified = getattr(user, "is_verified", None)
    return True if is_verified is None else bool(is_verified())


def why_no_actor(request) -> str:
    """Why a signed-in request has no actor (for the door's message): ``second-factor-pending`` (signed in
    with the password, the second step not done), ``inactive``, or ``no-institution``."""
    user = getattr(request, "user", None)
    if isinstance(user, User) and user.is_authenticated:
        if not user.is_active:
            return "inactive"
        if user.institution_id and not _second_factor_ok(request, user):
            return "second-factor-pending"
    return "no-institution"


#: The actor of each request being served, computed once per request object (DRF's or Django's): weak keys,
#: so an entry goes with its request; nothing is stashed on the framework's objects.
_request_actors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def actor_from_request(request) -> Actor | None:
    """The actor of a DRF or Django request (computed once per request), or None if anonymous/unaffiliated."""
    cached = _request_actors.get(request)
    if cached is not None:
        return cached
    request_id = getattr(request, "request_id", "")
    auth = getattr(request, "auth", None)
    actor = None
    if isinstance(auth, ApiClient):
        actor = actor_for_api_client(auth, request_id=request_id, ip=client_ip(request))
    else:
        user = getattr(request, "user", None)
        if (
            isinstance(user, User)
            and user.is_authenticated
            and user.is_active
            and user.institution_id
            and _second_factor_ok(request, user)
        ):
            actor = actor_for_user(user, request_id=request_id, ip=client_ip(request))
    if actor is not None:
        _request_actors[request] = actor
    return actor
