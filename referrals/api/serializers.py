"""Input and output serializers of the partner API (contract §4). No business logic here."""

from __future__ import annotations

import re
from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import directory
from accounts.choices import Province
from accounts.models import Institution
from plumbing import serializer_fields as strict

from .. import policy
from ..choices import (
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


class Text(strict.CharField):
    """Free text: valid Unicode only (no lone surrogates, no NUL), trimmed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.validators.append(_encodable)


class SubjectInput(StrictSerializer):
    given_name = Text(max_length=200, required=True, allow_blank=False)
    family_name = Text(max_length=200)
    date_of_birth = strict.DateField(required=False, allow_null=True)
    sex = strict.ChoiceField(choices=Sex.choices, required=False, default=Sex.UNKNOWN)
    nationality = strict.RegexField(
        r"^[A-Z]{3}$", required=False, allow_blank=True, help_text="ISO 3166-1 alpha-3 code, e.g. VEN"
    )
    languages = serializers.ListField(
        child=strict.RegexField(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"),
        required=False,
        max_length=20,
        default=list,
    )
    document_type = strict.ChoiceField(
        choices=DocumentType.choices, required=False, default=DocumentType.NONE
    )
    document_number = Text(max_length=64)
    phone = Text(max_length=32)
    email = strict.EmailField(required=False, allow_blank=True, max_length=254)
    current_location = Text(max_length=200)
    protection_needs = Text(max_length=10000)
    is_minor = strict.BooleanField(required=False, default=False)
    # Shape only: whether the subject is coherent (minor vs date of birth, document type vs number,
    # phone characters) is referrals.rules, applied by the services to what they store.


class SubjectUpdateInput(SubjectInput):
    given_name = Text(max_length=200, required=False, allow_blank=False)
    sex = strict.ChoiceField(choices=Sex.choices, required=False)
    languages = serializers.ListField(
        child=strict.RegexField(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"), required=False, max_length=20
    )
    document_type = strict.ChoiceField(choices=DocumentType.choices, required=False)
    is_minor = strict.BooleanField(required=False)


class CaseInput(StrictSerializer):
    subject = SubjectInput()
    summary = Text(max_length=20000)


class CaseUpdateInput(StrictSerializer):
    subject = SubjectUpdateInput(required=False)
    summary = Text(max_length=20000)


class ConsentInput(StrictSerializer):
    given = strict.BooleanField()
    given_by = strict.ChoiceField(choices=ConsentGivenBy.choices, required=False)
    method = strict.ChoiceField(choices=ConsentMethod.choices, required=False)
    obtained_at = strict.DateTimeField(required=False)
    data_categories = serializers.ListField(
        child=strict.ChoiceField(choices=DataCategory.choices),
        required=False,
        default=list,
        max_length=4,
    )

    # Shape only: a given consent's coherence (who, how, when, which categories) is referrals.rules,
    # applied by the service.


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
    case = strict.UUIDField()
    to_institution = InstitutionCodeField()
    services = serializers.ListField(
        child=strict.ChoiceField(choices=Service.choices), min_length=1, max_length=len(Service.values)
    )
    urgency = strict.ChoiceField(choices=Urgency.choices)
    reason = Text(max_length=20000)
    consent = ConsentInput(required=False)  # a draft may be saved without consent (contract §7.1)
    to_office = strict.RegexField(
        r"^[A-Z0-9_]{2,16}$",
        required=False,
        allow_null=True,
        help_text="An office code of to_institution (contract §7.2); absent or null: routing at send.",
    )
    province = strict.ChoiceField(
        choices=Province.choices,
        required=False,
        allow_null=True,
        help_text="Where the person needs the service: an ISO 3166-2:PA code (PA-1 … PA-10, PA-EM …).",
    )

    def validate(self, data):
        """The office code, named in the receiving institution (shape: an unknown one is a 400 here)."""
        code = data.get("to_office")
        if code is not None:
            office = directory.office_of(data["to_institution"].pk, code)
            if office is None:
                raise serializers.ValidationError(
                    {"to_office": ["Unknown office of the receiving institution."]}
                )
            data["to_office"] = office
        return data


class RouteInput(StrictSerializer):
    to_office = strict.RegexField(
        r"^[A-Z0-9_]{2,16}$",
        allow_null=True,
        help_text="An office code of the receiving institution; null: back to its national intake.",
    )


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
    """An institution of the network; ``node`` is the URL of the peer node hosting a remote institution
    (contract §7.4), null for the institutions of this node."""

    code = serializers.CharField()
    name = serializers.CharField()
    node = serializers.CharField(
        allow_null=True, help_text="The peer node hosting it (contract §7.4); null: hosted by this node."
    )

    def to_representation(self, institution):
        return {"code": institution.code, "name": institution.name, "node": institution.node or None}


class OfficeOutput(serializers.Serializer):
    """An office of the directory (contract §7.2)."""

    institution = serializers.CharField()
    code = serializers.CharField()
    name = serializers.CharField()
    province = serializers.ChoiceField(choices=Province.choices)
    services = serializers.ListField(child=serializers.ChoiceField(choices=Service.choices))
    languages = serializers.ListField(child=serializers.CharField())
    accepting_referrals = serializers.BooleanField(help_text="Accepting referrals now.")
    paused_until = serializers.DateField(allow_null=True)
    node = serializers.CharField(
        allow_null=True,
        help_text="The peer node hosting the office's institution (contract §7.4; its offices as that node "
        "serves them); null: an office of this node.",
    )

    def to_representation(self, office):
        return {
            "institution": office.institution.code,
            "code": office.code,
            "name": office.name,
            "province": office.province,
            "services": list(office.services),
            "languages": list(office.languages),
            "accepting_referrals": office.is_accepting(self.context.get("today")),
            "paused_until": None if office.paused_until is None else office.paused_until.isoformat(),
            "node": office.institution.node or None,
        }


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


class CaseOutput(serializers.Serializer):
    """A case as ``referrals.reads`` shows it (a ``CaseView``): subject and summary only to readers."""

    id = serializers.UUIDField()
    reference = serializers.CharField()
    institution = serializers.CharField()
    subject = SubjectOutput(allow_null=True)
    summary = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    erased = serializers.BooleanField()

    def to_representation(self, view):
        case = view.case
        return {
            "id": _text(case.pk),
            "reference": case.reference,
            "institution": case.institution.code,
            "subject": view.subject,
            "summary": view.summary,
            "created_at": _datetime(case.created_at),
            "updated_at": _datetime(case.updated_at),
            "erased": case.is_erased,
        }


class CaseCreatedOutput(CaseOutput):
    possible_duplicates = serializers.ListField(
        child=serializers.CharField(),
        help_text=(
            "References of other cases of the institution, that the caller may see, probably of the same "
            "person (score >= 0.5 by the matching of POST /cases/match/), best first; at most 10."
        ),
    )

    def to_representation(self, view):
        data = super().to_representation(view)
        data["possible_duplicates"] = self.context.get("possible_duplicates", [])
        return data


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
    to_office = serializers.CharField(
        source="to_office.code",
        allow_null=True,
        help_text="The receiving office's code; null: national intake.",
    )
    from_office = serializers.CharField(
        source="from_office.code",
        allow_null=True,
        help_text="The creating user's office code; null: an API client or national staff.",
    )
    province = serializers.SerializerMethodField(
        help_text="Where the person needs the service (ISO 3166-2:PA); null when not said."
    )
    services = serializers.ListField(child=serializers.ChoiceField(choices=Service.choices))
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    status = serializers.ChoiceField(choices=ReferralStatus.choices)
    assignee = serializers.SerializerMethodField()
    sent_at = serializers.DateTimeField(allow_null=True)
    response_due_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_case(self, referral):
        return str(referral.case_id) if policy.may_see_case(self.context["actor"], referral) else None

    @extend_schema_field(serializers.ChoiceField(choices=Province.choices, allow_null=True))
    def get_province(self, referral):
        return referral.province or None

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
            "to_office": directory.office_code(referral.to_office_id),
            "from_office": directory.office_code(referral.from_office_id),
            "province": referral.province or None,
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
    """The full representation of a ``referrals.reads.ReferralView``: subject and free texts are those the
    read service projected for the caller (``null`` without personal data)."""

    reason = serializers.CharField(allow_null=True)
    status_reason = serializers.CharField(allow_null=True)
    outcome = serializers.CharField(allow_null=True)
    consent = ConsentOutput()
    subject = SubjectOutput(allow_null=True)

    def to_representation(self, view):
        """The declared fields' rendering, without copying them per instance (see ``ConsentOutput``)."""
        referral = view.referral
        data = super().to_representation(referral)
        data["reason"] = view.texts.get("reason")
        data["status_reason"] = view.texts.get("status_reason")
        data["outcome"] = view.texts.get("outcome")
        data["consent"] = _consent_dict(referral.consent)
        data["subject"] = view.subject
        return data


class EventOutput(serializers.Serializer):
    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    actor_institution = serializers.CharField(source="actor_institution.code")
    action = serializers.CharField()
    from_status = serializers.CharField(allow_blank=True)
    to_status = serializers.CharField()


class NoteRefusalOutput(serializers.Serializer):
    """A note written on a copy that the referral's authority (the sender's node, contract §7.4) refused."""

    at = serializers.DateTimeField(help_text="When this node learnt of the refusal.")
    reason = serializers.CharField(help_text="The authority's problem slug, e.g. `permission-denied`.")


class NoteOutput(serializers.Serializer):
    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    author_institution = serializers.CharField(source="author_institution.code")
    body = serializers.CharField(allow_null=True)
    refused = NoteRefusalOutput(
        allow_null=True,
        help_text="Null, except for a note written at the receiver's node that the sender's node refused: "
        "the other institution does not have it.",
    )


def note_body(note, body: str | None) -> dict:
    """A note as ``NoteOutput`` declares it; ``body`` is what the read service lets the caller see."""
    return {
        "id": _text(note.pk),
        "at": _datetime(note.at),
        "author_institution": note.author_institution.code,
        "body": body,
        "refused": (
            {"at": _datetime(note.refused_at), "reason": note.refused_reason} if note.refused_at else None
        ),
    }
