"""Institutions, their staff and their API clients."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import GroupKind, Province, Role, Scope

institution_code_validator = RegexValidator(r"^[A-Z0-9_]{2,16}$", _("2–16 characters A–Z, 0–9 or _."))

#: A new staff username (every door: the web's form, the Django admin, ``create_staff_user``).
USERNAME_VALIDATOR = RegexValidator(r"^[a-z0-9._-]{3,150}$", _("3–150 lower-case letters, digits, . _ or -."))

#: A user never moves to another institution (contract §7.1): ``User.clean`` says so to the doors that
#: validate, and the database refuses the UPDATE whatever the door (trigger of migration 0003).
INSTITUTION_FIXED_MESSAGE = _("A user never moves to another institution.")
OFFICE_OF_OWN_INSTITUTION_MESSAGE = _("The office must be one of the user's institution.")
#: A remote institution's staff, API clients and offices are its own node's (contract §7.4).
REMOTE_INSTITUTION_MESSAGE = _(
    "%(code)s is hosted by the node %(node)s: its staff, API clients and offices are managed on that node."
)


class InstitutionQuerySet(models.QuerySet):
    def local(self):
        """Institutions hosted by this node (every institution of a single-node installation)."""
        return self.filter(node="")

    def remote(self):
        """Institutions hosted by a peer node (contract §7.4): known here from the peer's pinned card."""
        return self.exclude(node="")


class Institution(models.Model):
    """A party to the referral network (IOM, the Defensoría del Pueblo, later others), known by its CODE.

    ``node`` is empty for an institution hosted here; for a **remote institution** it is the URL of the
    peer node that hosts it (contract §7.4), set when that peer's card is pinned: it has no staff, clients or
    offices here, and referrals to it are delivered to its node.
    """

    code = models.CharField(max_length=16, unique=True, validators=[institution_code_validator])
    name = models.CharField(max_length=200)
    node = models.CharField(max_length=200, blank=True, default="")
    require_2fa_for_caseworkers = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = InstitutionQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(code__regex=r"^[A-Z0-9_]{2,16}$"), name="institution_code_format"
            )
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_remote(self) -> bool:
        return bool(self.node)

    def check_hosted_here(self, field: str | None = None) -> None:
        """``ValidationError`` (code ``remote-institution``) for a remote institution: nothing is created
        for it here — no staff, API client or office (contract §7.4: they are its own node's). The one rule
        asked by the services (``field``: the error names that field) and by ``User.clean``/``Office.clean``
        (the Django admin's forms)."""
        if not self.node:
            return
        message = REMOTE_INSTITUTION_MESSAGE % {"code": self.code, "node": self.node}
        raise ValidationError({field: [message]} if field else message, code="remote-institution")

    def group(self, kind: GroupKind | str) -> Group:
        """The institution's permission group of that kind (created on first use)."""
        group, _created = Group.objects.get_or_create(name=f"{self.code}:{GroupKind(kind).value}")
        return group


#: An office's code (contract §7.2): unique within its institution, never changed once created.
office_code_validator = RegexValidator(r"^[A-Z0-9_]{2,16}$", _("2–16 characters A–Z, 0–9 or _."))


class OfficeQuerySet(models.QuerySet):
    def accepting_now(self, today=None):
        """Offices accepting referrals today (contract §7.2): accepting, or paused until a date that has
        passed (the pause ends by itself after ``paused_until``)."""
        today = today or timezone.localdate()
        return self.filter(accepting_now_q(today))


def accepting_now_q(today) -> models.Q:
    """The condition of :meth:`Office.is_accepting` in a query (the one place of this rule, with it)."""
    return models.Q(accepting_referrals=True) | models.Q(paused_until__isnull=False, paused_until__lt=today)


def works_for_office_q(office_id) -> models.Q:
    """The staff who work for ``office_id`` (None: the national intake) as a query on users: national
    staff (no office) and that office's own (``referrals.policy.works_for_office``: the rule for one user)."""
    return models.Q(office__isnull=True) | models.Q(office_id=office_id)


def office_group_name(institution_code: str, office_code: str, *, supervisors: bool = False) -> str:
    """``DP:office:DARIEN`` (its caseworkers and supervisors) or ``DP:office:DARIEN:supervisors``."""
    base = f"{institution_code}:office:{office_code}"
    return base + ":supervisors" if supervisors else base


class Office(models.Model):
    """A service point of an institution (a regional or field office): where referrals are received and
    worked on. Staff with an office work for it; staff without one are national (contract §7.2)."""

    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="offices")
    code = models.CharField(max_length=16, validators=[office_code_validator])
    name = models.CharField(max_length=200)
    province = models.CharField(max_length=8, choices=Province.choices)
    #: Service codes of contract §4 (``accounts.choices.Service``).
    services = models.JSONField(default=list)
    #: ISO 639-1/3 codes of the languages the office serves in.
    languages = models.JSONField(default=list)
    accepting_referrals = models.BooleanField(default=True)
    paused_until = models.DateField(null=True, blank=True)
    #: Why the office is paused, shown to senders ("no lawyer until March"): about the office, never a person.
    pause_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OfficeQuerySet.as_manager()

    class Meta:
        ordering = ["institution__code", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "code"], name="office_code_unique_per_institution"
            ),
            models.CheckConstraint(
                condition=models.Q(code__regex=r"^[A-Z0-9_]{2,16}$"), name="office_code_format"
            ),
            models.CheckConstraint(
                condition=models.Q(province__in=Province.values), name="office_province_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.institution.code}/{self.code}"

    def clean(self):
        """An office of a remote institution is its node's (stored here from what that node serves,
        ``accounts.services.remote_offices_save``): no door adds or changes one here."""
        super().clean()
        if self.institution_id is not None:
            self.institution.check_hosted_here()

    @property
    def key(self) -> str:
        """``DP/DARIEN``: the office across the network (statistics keys, logs)."""
        return f"{self.institution.code}/{self.code}"

    def offers(self, services) -> bool:
        """Offers every one of ``services`` (codes): the rule of routing at send and of the referral form's
        offices (the one place of it)."""
        return set(services or ()) <= set(self.services or ())

    def is_accepting(self, today=None) -> bool:
        """Accepting referrals now (see ``accepting_now_q``)."""
        today = today or timezone.localdate()
        return self.accepting_referrals or (self.paused_until is not None and self.paused_until < today)

    def group_name(self, supervisors: bool = False) -> str:
        return office_group_name(self.institution.code, self.code, supervisors=supervisors)

    def group(self, *, supervisors: bool = False) -> Group:
        """The office's intake group (its caseworkers and supervisors: the referrals it holds), or its
        supervisors' group (the cases its staff open) — created on first use."""
        group, _created = Group.objects.get_or_create(name=self.group_name(supervisors))
        return group


class User(AbstractUser):
    """A person working for one institution, with one role. Superusers may have no institution."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="users", null=True, blank=True
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CASEWORKER)
    language = models.CharField(max_length=8, choices=[("es", "Español"), ("en", "English")], default="es")
    #: The office the person works in (contract §7.2); none: national staff, working for every office.
    office = models.ForeignKey(Office, on_delete=models.PROTECT, null=True, blank=True, related_name="staff")

    class Meta:
        ordering = ["username"]

    def clean(self):
        super().clean()
        if self.institution_id is not None and self._state.adding:
            self.institution.check_hosted_here()
        if self.office_id is not None and self.office.institution_id != self.institution_id:
            raise ValidationError({"office": OFFICE_OF_OWN_INSTITUTION_MESSAGE}, code="office")
        if self._state.adding:
            return
        stored = list(type(self)._default_manager.filter(pk=self.pk).values_list("institution_id", flat=True))
        if stored and stored[0] != self.institution_id:
            raise ValidationError({"institution": INSTITUTION_FIXED_MESSAGE}, code="institution-fixed")

    @property
    def requires_2fa(self) -> bool:
        if self.role in (Role.SUPERVISOR, Role.ADMIN):
            return True
        return bool(self.institution and self.institution.require_2fa_for_caseworkers)


def hash_token(token: str) -> str:
    """Tokens are random (≥ 256 bits), so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClient(models.Model):
    """A partner system acting as its institution's service account; its token is stored only as a hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="api_clients")
    name = models.CharField(max_length=200)
    scopes = models.JSONField(default=list)
    token_prefix = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    # DRF sets request.user to the client: it is an authenticated principal, never anonymous.
    is_authenticated = True
    is_anonymous = False

    class Meta:
        ordering = ["institution", "name"]

    def __str__(self) -> str:
        return f"{self.institution.code}:{self.name}"

    @staticmethod
    def new_token() -> str:
        return "rcm_" + secrets.token_urlsafe(32)

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def valid_scopes(cls) -> set[str]:
        return set(Scope.values)


class IdempotencyKey(models.Model):
    """A claimed ``Idempotency-Key`` of one API client or user (contract §3), kept 24 h.

    The row is inserted (in its own transaction) before the work, so the unique constraint on
    (principal, key) makes a concurrent duplicate fail in any process. It never stores the response
    body: only the request's hash, the created object's type and id and the status code; a repeat is
    re-rendered from the database.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", "in flight"
        DONE = "done", "done"

    id = models.BigAutoField(primary_key=True)
    #: ``client:<uuid>`` or ``user:<uuid>`` — ids only, never anything personal.
    principal = models.CharField(max_length=48)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    object_type = models.CharField(max_length=16, blank=True, default="")
    object_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="unique_idempotency_key_per_principal")
        ]

    def __str__(self) -> str:
        return f"{self.principal}:{self.state}"
