"""``POST /api/v1/cases/match/`` (contract §6.2): possible duplicates of a person, by keyed indexes only.

Scope ``referrals:read`` (a POST that reads: its terms must never be in a URL); only cases of the caller's
institution that the caller may see; the answer carries ids, references, scores and reasons — no personal
data; ``case.searched`` is recorded without the terms.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.choices import Scope
from referrals import rules
from referrals.api.serializers import StrictSerializer
from referrals.api.views import ERRORS, ApiView
from referrals.choices import Sex

from .matcher import MAX_RESULTS, search

REASONS = [
    "document_number",
    "name_exact",
    "name_similar",
    "date_of_birth",
    "date_of_birth_close",
    "sex",
    "nationality",
]


class StrictText(serializers.CharField):
    """A JSON string only (a number or a boolean is a 400, not coerced), valid Unicode, no NUL, trimmed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise serializers.ValidationError("Text must be valid Unicode.") from None
        return super().to_internal_value(data)


class StrictDate(serializers.DateField):
    """``YYYY-MM-DD`` as a JSON string (a number, or a date-time, is a 400)."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class StrictChoice(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input="?")
        return super().to_internal_value(data)


class MatchInput(StrictSerializer):
    """Every field optional, but both names or a document number are required."""

    given_name = StrictText(max_length=200)
    family_name = StrictText(max_length=200)
    date_of_birth = StrictDate(required=False, allow_null=True)
    sex = StrictChoice(choices=Sex.choices, required=False, allow_null=True)
    nationality = serializers.RegexField(
        r"^[A-Z]{3}$",
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="ISO 3166-1 alpha-3, e.g. VEN",
    )
    document_number = StrictText(max_length=64)

    def validate_nationality(self, value):
        return value or None

    def validate(self, attrs):
        if not rules.names_or_document(attrs):
            message = "Give both given_name and family_name, or a document_number."
            raise serializers.ValidationError(
                {name: [message] for name in ("given_name", "family_name", "document_number")}
            )
        return attrs


class MatchResultOutput(serializers.Serializer):
    case = serializers.UUIDField()
    reference = serializers.CharField()
    score = serializers.FloatField(min_value=0.0, max_value=1.0)
    reasons = serializers.ListField(child=serializers.ChoiceField(choices=REASONS))


class MatchOutput(serializers.Serializer):
    results = MatchResultOutput(many=True)


@extend_schema(tags=["cases"])
class CaseMatch(ApiView):
    """Possible duplicates of a person among the caller's institution's cases (keyed indexes only)."""

    write_scope = Scope.REFERRALS_READ

    @extend_schema(
        operation_id="cases_match",
        request=MatchInput,
        responses={200: MatchOutput, **ERRORS, 429: OpenApiResponse(description="Too many requests")},
        description=(
            "Best first, at most 10, each case once. `score` ≥ 0.5 means probably the same person (tolerates "
            "accents, case, hyphens, a dropped second name, swapped given/family names, spelling variants, "
            "a typo, a day/month swap, a 1 January placeholder, a year off by one, a document number however "
            "written). Scope referrals:read. Records `case.searched` without the terms."
        ),
        examples=[
            OpenApiExample(
                "By name and date of birth",
                value={"given_name": "Yeferson", "family_name": "Vásquez", "date_of_birth": "1994-03-07"},
                request_only=True,
            )
        ],
    )
    def post(self, request):
        serializer = MatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        names = rules.by_names(data)
        terms = {
            "given_name": data.get("given_name") if names else None,
            "family_name": data.get("family_name") if names else None,
            "date_of_birth": data.get("date_of_birth"),
            "sex": data.get("sex"),
            "nationality": data.get("nationality"),
            "document_number": data.get("document_number") or None,
        }
        matches = search(self.actor, by="match", terms=terms)
        body = {
            "results": [
                {
                    "case": str(m.case_id),
                    "reference": m.reference,
                    "score": m.score,
                    "reasons": list(m.reasons),
                }
                for m in matches[:MAX_RESULTS]
            ]
        }
        return Response(body)
