"""Input and output serializers of the partner API (contract §4). No business logic here."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Institution

from ..choices import (
    CATEGORY_FIELDS,
    ConsentGivenBy,
    ConsentMethod,
    DataCategory,
    DocumentType,
    Service,
    Sex,
    Urgency,
)
from ..choices import Status as ReferralStatus

# --- input ---------------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Rejects unknown fields (at every nesting level) and non-object bodies."""

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(str(k) for k in data if k not in self.fields)
        if unknown:
            raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


def _encodable(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Text must be valid Unicode.") from None


class Text(serializers.CharField):
    """Free text: valid Unicode only (no lone surrogates, no NUL), trimmed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.validators.append(_encodable)


class SubjectInput(StrictSerializer):
    given_name = Text(max_length=200, required=True, allow_blank=False)
    family_name = Text(max_length=200)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    sex = serializers.ChoiceField(choices=Sex.choices, required=False, default=Sex.UNKNOWN)
    nationality = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, allow_blank=True, help_text="ISO 3166-1 alpha-3 code, e.g. VEN"
    )
    languages = serializers.ListField(
        child=serializers.RegexField(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"),
        required=False,
        max_length=20,
        default=list,
    )
    document_type = serializers.ChoiceField(
        choices=DocumentType.choices, required=False, default=DocumentType.NONE
    )
    document_number = Text(max_length=64)
    phone = Text(max_length=32)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    current_location = Text(max_length=200)
    protection_needs = Text(max_length=10000)
    is_minor = serializers.BooleanField(required=False, default=False)

    def validate_date_of_birth(self, value):
        if value is not None and value > timezone.localdate():
            raise serializers.ValidationError("The date of birth cannot be in the future.")
        if value is not None and value.year < 1900:
            raise serializers.ValidationError("The date of birth is not plausible.")
        return value


class SubjectUpdateInput(SubjectInput):
    given_name = Text(max_length=200, required=False, allow_blank=False)
    sex = serializers.ChoiceField(choices=Sex.choices, required=False)
    languages = serializers.ListField(
        child=serializers.RegexField(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"), required=False, max_length=20
    )
    document_type = serializers.ChoiceField(choices=DocumentType.choices, required=False)
    is_minor = serializers.BooleanField(required=False)


class CaseInput(StrictSerializer):
    subject = SubjectInput()
    summary = Text(max_length=20000)


class CaseUpdateInput(StrictSerializer):
    subject = SubjectUpdateInput(required=False)
    summary = Text(max_length=20000)


class ConsentInput(StrictSerializer):
    given = serializers.BooleanField()
    given_by = serializers.ChoiceField(choices=ConsentGivenBy.choices, required=False)
    method = serializers.ChoiceField(choices=ConsentMethod.choices, required=False)
    obtained_at = serializers.DateTimeField(required=False)
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices),
        required=False,
        default=list,
        max_length=4,
    )

    def validate(self, attrs):
        if attrs.get("given"):
            errors = {
                name: ["Required when consent is given."]
                for name in ("given_by", "method", "obtained_at")
                if not attrs.get(name)
            }
            if not attrs.get("data_categories"):
                errors["data_categories"] = ["Choose at least one data category."]
            if errors:
                raise serializers.ValidationError(errors)
            if attrs["obtained_at"] > timezone.now() + timezone.timedelta(minutes=5):
                raise serializers.ValidationError(
                    {"obtained_at": ["Consent cannot be obtained in the future."]}
                )
        return attrs


class InstitutionCodeField(serializers.SlugRelatedField):
    """An institution by CODE; anything that is not a well-formed code is refused before any query
    (a NUL byte or a lone surrogate must never reach the database)."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="code", queryset=Institution.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(r"[A-Z0-9_]{2,16}", data):
            self.fail("does_not_exist", slug_name=self.slug_field, value="?")
        return super().to_internal_value(data)


class ReferralInput(StrictSerializer):
    case = serializers.UUIDField()
    to_institution = InstitutionCodeField()
    services = serializers.ListField(
        child=serializers.ChoiceField(choices=Service.choices), min_length=1, max_length=len(Service.values)
    )
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    reason = Text(max_length=20000)
    consent = ConsentInput()


class ReasonInput(StrictSerializer):
    reason = Text(max_length=20000, allow_null=True)


class OutcomeInput(StrictSerializer):
    outcome = Text(max_length=20000, allow_null=True)


class EmptyInput(StrictSerializer):
    pass


class NoteInput(StrictSerializer):
    body = Text(max_length=20000, required=True, allow_blank=False)


class WithdrawInput(StrictSerializer):
    reason = Text(max_length=20000, allow_null=True)


# --- output --------------------------------------------------------------------------------------


class InstitutionOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class SubjectOutput(serializers.Serializer):
    """All keys are optional: the receiver gets only the consented categories (others omitted)."""

    given_name = serializers.CharField(required=False, allow_null=True)
    family_name = serializers.CharField(required=False, allow_null=True)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    sex = serializers.ChoiceField(choices=Sex.choices, required=False, allow_null=True)
    nationality = serializers.CharField(required=False, allow_null=True)
    languages = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    document_type = serializers.ChoiceField(choices=DocumentType.choices, required=False, allow_null=True)
    document_number = serializers.CharField(required=False, allow_null=True)
    phone = serializers.CharField(required=False, allow_null=True)
    email = serializers.CharField(required=False, allow_null=True)
    current_location = serializers.CharField(required=False, allow_null=True)
    protection_needs = serializers.CharField(required=False, allow_null=True)
    is_minor = serializers.BooleanField(required=False, allow_null=True)


def subject_dict(subject, categories=None) -> dict | None:
    """The subject's fields as a dict; only the keys of ``categories`` when given (receiver)."""
    if subject is None or subject.case.is_erased:
        return None
    if categories is None:
        names = [f for fields in CATEGORY_FIELDS.values() for f in fields]
    else:
        names = [f for cat in categories for f in CATEGORY_FIELDS.get(cat, ())]
    data = {}
    for name in names:
        value = getattr(subject, name)
        data[name] = value.isoformat() if name == "date_of_birth" and value is not None else value
    return data


class CaseOutput(serializers.Serializer):
    id = serializers.UUIDField()
    reference = serializers.CharField()
    institution = serializers.CharField(source="institution.code")
    subject = serializers.SerializerMethodField()
    summary = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    erased = serializers.SerializerMethodField()

    @extend_schema_field(SubjectOutput(allow_null=True))
    def get_subject(self, case):
        return subject_dict(getattr(case, "subject", None))

    def get_erased(self, case) -> bool:
        return case.is_erased


class CaseCreatedOutput(CaseOutput):
    possible_duplicates = serializers.SerializerMethodField()

    def get_possible_duplicates(self, case) -> list[str]:
        """References of other cases of the institution with the same name and date of birth."""
        return self.context.get("possible_duplicates", [])


class CaseListItemOutput(serializers.Serializer):
    id = serializers.UUIDField()
    reference = serializers.CharField()
    institution = serializers.CharField(source="institution.code")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# The referral representations are the API's hot path (a list page renders 50 of them, a detail one
# with its consent). DRF renders a serializer by deep-copying each declared field for every instance
# (~30 field objects for a detail: ~0.3 ms); these three render the same values directly instead. The
# declared fields stay: they are the OpenAPI schema, and tests/api/test_fast_representations.py renders
# every kind of referral both ways and requires identical JSON.
_DATETIME = serializers.DateTimeField()


def _datetime(value) -> str | None:
    """As ``serializers.DateTimeField`` renders it (ISO 8601 in the current time zone, ``Z`` for UTC)."""
    return None if value is None else _DATETIME.to_representation(value)


def _text(value) -> str | None:
    return None if value is None else str(value)


class ConsentOutput(serializers.Serializer):
    given = serializers.BooleanField()
    given_by = serializers.CharField(allow_blank=True)
    method = serializers.CharField(allow_blank=True)
    obtained_at = serializers.DateTimeField(allow_null=True)
    data_categories = serializers.ListField(child=serializers.ChoiceField(choices=DataCategory.choices))
    withdrawn_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, consent):
        """The declared fields' rendering, without copying them per instance (see above)."""
        return _consent_dict(consent)


def _consent_dict(consent) -> dict:
    categories = consent.data_categories
    return {
        "given": None if consent.given is None else bool(consent.given),
        "given_by": _text(consent.given_by),
        "method": _text(consent.method),
        "obtained_at": _datetime(consent.obtained_at),
        "data_categories": None if categories is None else [_text(c) for c in categories],
        "withdrawn_at": _datetime(consent.withdrawn_at),
    }


class ReferralListItemOutput(serializers.Serializer):
    """Metadata only: no subject, no free text."""

    id = serializers.UUIDField()
    reference = serializers.CharField()
    case = serializers.SerializerMethodField()
    from_institution = serializers.CharField(source="from_institution.code")
    to_institution = serializers.CharField(source="to_institution.code")
    services = serializers.ListField(child=serializers.ChoiceField(choices=Service.choices))
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    status = serializers.ChoiceField(choices=ReferralStatus.choices)
    assignee = serializers.SerializerMethodField()
    sent_at = serializers.DateTimeField(allow_null=True)
    response_due_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def _is_sender(self, referral) -> bool:
        return referral.from_institution_id == self.context["actor"].institution.pk

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_case(self, referral):
        return str(referral.case_id) if self._is_sender(referral) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_assignee(self, referral):
        return referral.assignee.username if referral.assignee_id else None

    def to_representation(self, referral):
        """The declared fields' rendering, without copying them per instance (see ``ConsentOutput``)."""
        services = referral.services
        return {
            "id": _text(referral.id),
            "reference": _text(referral.reference),
            "case": self.get_case(referral),
            "from_institution": _text(referral.from_institution.code),
            "to_institution": _text(referral.to_institution.code),
            "services": None if services is None else [_text(v) for v in services],
            "urgency": _text(referral.urgency),
            "status": _text(referral.status),
            "assignee": self.get_assignee(referral),
            "sent_at": _datetime(referral.sent_at),
            "response_due_at": _datetime(referral.response_due_at),
            "created_at": _datetime(referral.created_at),
            "updated_at": _datetime(referral.updated_at),
        }


class ReferralOutput(ReferralListItemOutput):
    """The full representation; personal data only when ``context['personal']`` allows it."""

    reason = serializers.SerializerMethodField()
    status_reason = serializers.SerializerMethodField()
    outcome = serializers.SerializerMethodField()
    consent = ConsentOutput()
    subject = serializers.SerializerMethodField()

    def _personal(self, referral) -> bool:
        return self.context["personal"]

    def _text(self, referral, name):
        return getattr(referral, name) if self._personal(referral) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reason(self, referral):
        return self._text(referral, "reason")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_status_reason(self, referral):
        return self._text(referral, "status_reason")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_outcome(self, referral):
        return self._text(referral, "outcome")

    @extend_schema_field(SubjectOutput(allow_null=True))
    def get_subject(self, referral):
        if not self._personal(referral):
            return None
        if self._is_sender(referral):
            return subject_dict(referral.case.subject)
        return subject_dict(referral.case.subject, referral.consent.data_categories)

    def to_representation(self, referral):
        """The declared fields' rendering, without copying them per instance (see ``ConsentOutput``)."""
        data = super().to_representation(referral)
        data["reason"] = self.get_reason(referral)
        data["status_reason"] = self.get_status_reason(referral)
        data["outcome"] = self.get_outcome(referral)
        data["consent"] = _consent_dict(referral.consent)
        data["subject"] = self.get_subject(referral)
        return data


class EventOutput(serializers.Serializer):
    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    actor_institution = serializers.CharField(source="actor_institution.code")
    action = serializers.CharField()
    from_status = serializers.CharField(allow_blank=True)
    to_status = serializers.CharField()


class NoteOutput(serializers.Serializer):
    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    author_institution = serializers.CharField(source="author_institution.code")
    body = serializers.CharField(allow_null=True)
