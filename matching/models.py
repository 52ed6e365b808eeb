"""The keyed matching indexes of cases, and links between cases of the same person.

No column holds a name, a date of birth or a document number, in clear or under an unkeyed hash: only
truncated HMACs under keys derived from ``BLIND_INDEX_KEY`` (``matching.encoding``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from accounts.models import Institution, User
from referrals.models import Case


class MatchToken(models.Model):
    """One blocking token of a case (a keyed phonetic code + year of birth, a keyed document number…):
    a query reads the rows of its own tokens through the (institution, token) index."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.PositiveSmallIntegerField()
    token = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["institution", "token", "case"], name="match_token_lookup")]

    def __str__(self) -> str:
        return f"token of {self.case_id}"


class MatchProfile(models.Model):
    """The keyed encodings of one case's subject that a query is scored against (see ``matching.scoring``),
    sealed (AES-GCM under a key derived from BLIND_INDEX_KEY, bound to the case): only Python reads them."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, primary_key=True, related_name="+")
    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="+")
    sealed = models.TextField()
    #: ``key_fingerprint`` of the BLIND_INDEX_KEY it was computed with: stale after a key change.
    key_version = models.CharField(max_length=16)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"profile of {self.case_id}"


class CaseLink(models.Model):
    """Two cases of one institution recorded as the same person (no merge: both stay as they are).

    ``case_a`` is the case with the smaller id, so a pair has one row; undoing a link keeps the row with
    ``unlinked_at`` set (the audit log holds who did what).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    case_a = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    case_b = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    unlinked_at = models.DateTimeField(null=True, blank=True)
    unlinked_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case_a", "case_b"],
                condition=models.Q(unlinked_at__isnull=True),
                name="matching_one_active_link_per_pair",
            ),
            models.CheckConstraint(
                condition=models.Q(case_a__lt=models.F("case_b")), name="matching_link_ordered"
            ),
        ]
        indexes = [models.Index(fields=["case_b"], name="matching_link_case_b")]

    def __str__(self) -> str:
        return f"link {self.pk}"

    def other(self, case_id):
        """The other case of the link, seen from ``case_id``."""
        return self.case_b if self.case_a_id == case_id else self.case_a
