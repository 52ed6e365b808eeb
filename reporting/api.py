"""The partner API door of the statistics: ``GET /api/v1/statistics/referrals/`` (contract §6.4, §7.5)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actor import actor_from_request
from accounts.choices import Province
from accounts.permissions import IsActor
from plumbing.problems import ProblemError
from plumbing.query import ALWAYS_KNOWN, StrictQuery
from referrals import policy

from .reads import referral_statistics
from .statistics import DIMENSIONS, UNKNOWN, StatisticsQueryError, parse_query

_DIMENSION = "(" + "|".join(DIMENSIONS) + ")"
BY_PATTERN = f"^{_DIMENSION}(,{_DIMENSION})?$"
_SPECIFIC_KEY_SCHEMAS = {
    "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
    "is_minor": {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": [UNKNOWN]}]},
    # ``DP/DARIEN``, or the receiving institution's code alone for its national intake (contract §7.2).
    "to_office": {"type": "string", "pattern": "^[A-Z0-9_]{2,16}(/[A-Z0-9_]{2,16})?$"},
    "province": {"type": "string", "enum": [*Province.values, UNKNOWN]},
}
_KEY_VALUE_SCHEMAS = {
    dimension: _SPECIFIC_KEY_SCHEMAS.get(dimension, {"type": "string"}) for dimension in DIMENSIONS
}


@extend_schema_field(
    {
        "type": "object",
        "description": "The row's value of each requested dimension (codes; `unknown` where not known).",
        "properties": _KEY_VALUE_SCHEMAS,
        "additionalProperties": False,
    }
)
class StatisticsKeyField(serializers.JSONField):
    """A row's key: ``{dimension: value}``."""


class StatisticsRowOutput(serializers.Serializer):
    key = StatisticsKeyField()
    count = serializers.IntegerField(
        allow_null=True,
        min_value=1,
        help_text="The published count: the true count adjusted by at most `max_adjustment` (cell-key "
        "method); never between 1 and min_cell − 1. Never null since contract §7.5.",
    )
    suppressed = serializers.BooleanField(help_text="Always false under perturbation (kept in the shape).")
    median_hours_to_answer = serializers.FloatField(
        allow_null=True,
        help_text="Median hours from sending to the receiver's acceptance or rejection, in whole hours; null "
        "unless the row's true count and its answered referrals are both at least min_cell.",
    )


# ``from`` is a Python keyword: the serializer's fields are given to its metaclass by name.
StatisticsOutput = type(
    "StatisticsOutput",
    (serializers.Serializer,),
    {
        "__doc__": "Counts of referrals by one or two dimensions, perturbed by the cell-key method.",
        "from": serializers.DateField(help_text="First day of the period (UTC), inclusive."),
        "to": serializers.DateField(help_text="Last day of the period (UTC), inclusive."),
        "by": serializers.ListField(child=serializers.ChoiceField(choices=DIMENSIONS)),
        "min_cell": serializers.IntegerField(help_text="No published count is between 1 and min_cell − 1."),
        "protection": serializers.ChoiceField(
            choices=["cell_key"], help_text="How the counts are protected: `cell_key` (contract §7.5)."
        ),
        "max_adjustment": serializers.IntegerField(
            help_text="The largest difference between a published count and the true one (2)."
        ),
        "total": serializers.IntegerField(
            allow_null=True,
            min_value=0,
            help_text="Referrals counted, perturbed as a cell of its own (so rows may not add up to it).",
        ),
        "rows": StatisticsRowOutput(many=True),
    },
)

PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.DATE, required=True, description="First day (UTC) of the period, inclusive."
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.DATE,
        required=True,
        description="Last day (UTC) of the period, inclusive; at most 5 years after `from`.",
    ),
    OpenApiParameter(
        "by",
        {"type": "string", "pattern": BY_PATTERN},
        required=True,
        description="One or two distinct dimensions, comma-separated (e.g. `month,service`): "
        + ", ".join(DIMENSIONS)
        + ".",
    ),
]


@extend_schema(tags=["statistics"])
class ReferralStatistics(StrictQuery, APIView):
    """Statistics of the referrals the caller's institution sent or received (scope ``statistics:read``).

    Over the referrals sent in [from, to] (UTC dates, inclusive), voided ones excluded. Every count, the
    total included, is published perturbed by the cell-key method (contract §7.5): the true count plus a
    fixed adjustment of at most `max_adjustment` that depends only on which referrals the cell holds, so
    the same referrals always give the same figure and differences of overlapping periods are noisy; no
    published count is between 1 and `min_cell − 1`; rows published as 0 are omitted. For the receiver,
    referrals whose person it may not read (no `identity` consent, consent withdrawn, rejected, cancelled,
    voided) count as `unknown` in sex, nationality, age_band and is_minor. Records `statistics.viewed`.
    """

    permission_classes = [IsActor]
    query_parameters = frozenset({"from", "to", "by"})

    @extend_schema(
        operation_id="statistics_referrals",
        parameters=PARAMETERS,
        responses={200: StatisticsOutput, 400: OpenApiResponse(description="Invalid parameters.")},
    )
    def get(self, request):
        actor = actor_from_request(request)
        policy.require_view_statistics(actor)  # 403 before a malformed query's 400
        try:
            own = {name: values for name, values in request.query_params.lists() if name not in ALWAYS_KNOWN}
            query = parse_query(own)
        except StatisticsQueryError as exc:
            raise ProblemError(
                "validation-error", 400, "Invalid statistics parameters.", exc.errors
            ) from None
        result = referral_statistics(actor=actor, query=query, door="api")
        response = Response(result.body)
        response["Cache-Control"] = "no-store"  # contract §6.1 (every /api/ response)
        return response
