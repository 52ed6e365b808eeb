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

from .choices import GroupKind, Role, Scope

institution_code_validator = RegexValidator(r"^[A-Z0-9_]{2,16}$", _("2–16 characters A–Z, 0–9 or _."))

#: A new staff username (every door: the web's form, the Django admin, ``create_staff_user``).
USERNAME_VALIDATOR = RegexValidator(r"^[a-z0-9._-]{3,150}$", _("3–150 lower-case letters, digits, . _ or -."))

#: A user never moves to another institution (contract §7.1): ``User.clean`` says so to the doors that
#: validate, and the database refuses the UPDATE whatever the door (trigger of migration 0003).
INSTITUTION_FIXED_MESSAGE = _("A user never moves to another institution.")


class Institution(models.Model):
    """A party to the referral network (IOM, the Defensoría del Pueblo, later others), known by its CODE."""

    code = models.CharField(max_length=16, unique=True, validators=[institution_code_validator])
    name = models.CharField(max_length=200)
    require_2fa_for_caseworkers = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(code__regex=r"^[A-Z0-9_]{2,16}$"), name="institution_code_format"
            )
        ]

    def __str__(self) -> str:
        return self.code

    def group(self, kind: GroupKind | str) -> Group:
        """The institution's permission group of that kind (created on first use)."""
        group, _created = Group.objects.get_or_create(name=f"{self.code}:{GroupKind(kind).value}")
        return group


class User(AbstractUser):
    """A person working for one institution, with one role. Superusers may have no institution."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="users", null=True, blank=True
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CASEWORKER)
    language = models.CharField(max_length=8, choices=[("es", "Español"), ("en", "English")], default="es")

    class Meta:
        ordering = ["username"]

    def clean(self):
        super().clean()
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
