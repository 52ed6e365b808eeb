"""Cases, their subject (the migrant), consents, referrals, the timeline and notes.

Personal data lives only in ``EncryptedField`` columns, encrypted with the case's data key.
"""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.utils import timezone

from accounts.choices import Province
from accounts.models import ApiClient, Institution, Office, User

from . import crypto
from .choices import ConsentGivenBy, ConsentMethod, Status, Urgency
from .fields import EncryptedField, EncryptedFieldsQuerySet


class EncryptedByCase(models.Model):
    """A model whose encrypted fields use the data key of a case (``_case_for_key()``); its querysets refuse
    to order by an encrypted field."""

    objects = EncryptedFieldsQuerySet.as_manager()

    class Meta:
        abstract = True

    def _case_for_key(self) -> Case:
        raise NotImplementedError

    def encryption_data_key(self) -> bytes:
        return self._case_for_key().data_key()


class Case(EncryptedByCase):
    """A migrant's file, owned by one institution; holds the wrapped data key of everything about them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=32, unique=True)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="cases")
    owner = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_cases"
    )
    collaborators = models.ManyToManyField(User, blank=True, related_name="collaborating_cases")
    wrapped_data_key = models.BinaryField(null=True, editable=False)
    summary = EncryptedField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("view_case_personal", "Can view the personal data of a case")]

    def __str__(self) -> str:
        return self.reference

    def _case_for_key(self) -> Case:
        return self

    def save(self, *args, **kwargs):
        if self.wrapped_data_key is None and self.erased_at is None:
            self.data_key()  # a new case gets its data key before its first INSERT
        super().save(*args, **kwargs)

    def data_key(self) -> bytes:
        dek = getattr(self, "_dek", None)
        if dek is None:
            if self.wrapped_data_key is None and self.erased_at is None:
                dek = crypto.new_data_key()
                self.wrapped_data_key = crypto.wrap_data_key(dek, owner_id=self.pk)
            else:
                dek = crypto.unwrap_data_key(self.wrapped_data_key, owner_id=self.pk)
            self._dek = dek
        return dek

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class Subject(EncryptedByCase):
    """The migrant. Every field is personal data; document number and name+birth date are searchable
    only through blind indexes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="subject")
    given_name = EncryptedField()
    family_name = EncryptedField()
    date_of_birth = EncryptedField(codec="date")
    sex = EncryptedField()
    nationality = EncryptedField()
    languages = EncryptedField(codec="json")
    document_type = EncryptedField()
    document_number = EncryptedField()
    phone = EncryptedField()
    email = EncryptedField()
    current_location = EncryptedField()
    protection_needs = EncryptedField()
    is_minor = EncryptedField(codec="bool")
    document_number_index = models.CharField(max_length=16, blank=True, default="", db_index=True)

    def _case_for_key(self) -> Case:
        return self.case


#: The range of the referrals' record keys (contract §7.5: the statistics' cell-key perturbation).
RECORD_KEY_RANGE = 4096


def new_record_key() -> int:
    """A referral's fixed random record key: drawn once at creation, never served (not personal data)."""
    return secrets.randbelow(RECORD_KEY_RANGE)


class Referral(EncryptedByCase):
    """A request from one institution to another to serve the subject of a case."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=32, unique=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="referrals")
    from_institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="sent_referrals")
    to_institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="received_referrals"
    )
    #: The receiving office (contract §7.2): its staff see the referral; none: the institution's national
    #: intake (its national staff). Set on create, by routing at ``send``, or by ``route``.
    to_office = models.ForeignKey(
        Office, on_delete=models.PROTECT, null=True, blank=True, related_name="received_referrals"
    )
    #: The creating user's office (none: an API client or national staff).
    from_office = models.ForeignKey(Office, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    #: Where the person needs the service (ISO 3166-2:PA); "" when not said.
    province = models.CharField(max_length=8, choices=Province.choices, blank=True, default="")
    services = models.JSONField(default=list)
    urgency = models.CharField(max_length=16, choices=Urgency.choices, default=Urgency.NORMAL)
    reason = EncryptedField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_reason = EncryptedField()
    outcome = EncryptedField()
    assignee = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="assigned_referrals"
    )
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)
    response_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    receiver_access_revoked_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    #: The statistics' record key (``reporting``: a cell's key is the sum of its referrals' keys).
    record_key = models.PositiveSmallIntegerField(default=new_record_key, editable=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("view_referral_personal", "Can view the personal data carried by a referral")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(from_institution=models.F("to_institution")), name="referral_not_to_self"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="referral_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["to_institution", "status", "-created_at"]),
            models.Index(fields=["from_institution", "-created_at"]),
            # Pages of the inbound/outbound lists, read in index order for each ``ordering``.
            models.Index(fields=["to_institution", "-created_at"], name="referral_to_created"),
            models.Index(fields=["to_institution", "-updated_at"], name="referral_to_updated"),
            models.Index(fields=["from_institution", "-updated_at"], name="referral_from_updated"),
        ]

    def __str__(self) -> str:
        return self.reference

    def _case_for_key(self) -> Case:
        return self.case

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


class Consent(EncryptedByCase):
    """The person's consent to share data categories with one recipient for one referral."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    referral = models.OneToOneField(Referral, on_delete=models.CASCADE, related_name="consent")
    recipient = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    given = models.BooleanField(default=False)
    given_by = models.CharField(max_length=16, choices=ConsentGivenBy.choices, blank=True, default="")
    method = models.CharField(max_length=16, choices=ConsentMethod.choices, blank=True, default="")
    obtained_at = models.DateTimeField(null=True, blank=True)
    data_categories = models.JSONField(default=list)
    details = EncryptedField()
    recorded_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = EncryptedField()

    def _case_for_key(self) -> Case:
        return self.referral.case

    @property
    def is_active(self) -> bool:
        return self.given and self.withdrawn_at is None


class ReferralEvent(models.Model):
    """One step of a referral's timeline (no personal data: free text stays on the referral)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor_institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    actor_user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_api_client = models.ForeignKey(
        ApiClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20)
    sequence = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "sequence"]


class Note(EncryptedByCase):
    """A message between the two institutions on a referral."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="notes")
    author_institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    author_user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    author_api_client = models.ForeignKey(
        ApiClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = EncryptedField()
    at = models.DateTimeField(default=timezone.now, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    #: A note written on a copy whose authority (another node, contract §7.4) refused it: when this node
    #: learnt it, and the authority's problem slug (``federated.note_refused``). Null on every other note.
    refused_at = models.DateTimeField(null=True, blank=True)
    refused_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["at"]

    def _case_for_key(self) -> Case:
        return self.referral.case


class ReferenceCounter(models.Model):
    """Per institution, kind and year counter for human references (``IOM-2026-000123``), advanced by
    ``references.next_value`` (its own short transaction on PostgreSQL). No foreign-key constraint in the
    database: that transaction may count for an institution created by a transaction not yet committed."""

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, db_constraint=False)
    kind = models.CharField(max_length=8)
    year = models.PositiveIntegerField()
    value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["institution", "kind", "year"], name="unique_reference_counter")
        ]


# --- guardian: direct foreign-key object permissions --------------------------------------------
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase  # noqa: E402


class CaseUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)


class CaseGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)


class ReferralUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Referral, on_delete=models.CASCADE)


class ReferralGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Referral, on_delete=models.CASCADE)
