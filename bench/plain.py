"""The baseline: plain Django REST framework views over the same rows, with no decryption, no object
permissions and no audit (the same bearer authentication and pagination, so only those costs differ).
A signed-in staff member of an office (session, as the real API allows) gets their office's referrals: the
plain counterpart of an office's queue (issue 20)."""

from __future__ import annotations

from rest_framework import generics, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response

from accounts.authentication import BearerTokenAuthentication
from plumbing.pagination import CursorPagination
from referrals.models import Referral

LIST_FIELDS = [
    "id",
    "reference",
    "case_id",
    "from_institution__code",
    "to_institution__code",
    "services",
    "urgency",
    "status",
    "assignee_id",
    "sent_at",
    "response_due_at",
    "created_at",
    "updated_at",
]
SUBJECT = [
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "nationality",
    "languages",
    "document_type",
    "document_number",
    "phone",
    "email",
    "current_location",
    "protection_needs",
    "is_minor",
]
DETAIL_FIELDS = LIST_FIELDS + [
    "reason",
    "status_reason",
    "outcome",
    "consent__given",
    "consent__given_by",
    "consent__method",
    "consent__obtained_at",
    "consent__data_categories",
    "consent__withdrawn_at",
    *(f"case__subject__{name}" for name in SUBJECT),
]


class PlainListItem(serializers.ModelSerializer):
    from_institution = serializers.CharField(source="from_institution.code")
    to_institution = serializers.CharField(source="to_institution.code")
    case = serializers.UUIDField(source="case_id")
    assignee = serializers.UUIDField(source="assignee_id")

    class Meta:
        model = Referral
        fields = [
            "id",
            "reference",
            "case",
            "from_institution",
            "to_institution",
            "services",
            "urgency",
            "status",
            "assignee",
            "sent_at",
            "response_due_at",
            "created_at",
            "updated_at",
        ]


class PlainReferralList(generics.ListAPIView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = []
    throttle_classes = []
    serializer_class = PlainListItem
    pagination_class = CursorPagination

    def get_queryset(self):
        if self.request.auth is None:  # a signed-in member of an office: the office's referrals
            user = self.request.user
            rows = Referral.objects.filter(to_institution_id=user.institution_id, to_office_id=user.office_id)
        else:
            rows = Referral.objects.filter(to_institution=self.request.auth.institution)
        return rows.select_related("from_institution", "to_institution")


class PlainReferralDetail(generics.GenericAPIView):
    """One referral's columns as stored (ciphertext stays ciphertext): no decryption at all."""

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = []
    throttle_classes = []

    def get(self, request, pk):
        row = Referral.objects.filter(pk=pk).values(*DETAIL_FIELDS).first()
        return Response({key: (str(v) if v is not None else None) for key, v in row.items()})
