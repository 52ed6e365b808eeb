from __future__ import annotations

import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.choices import Service  # noqa: F401  (the services of §4: the directory's, offered by offices)


class Status(models.TextChoices):
    """FHIR Task status codes (``ready`` is not used)."""

    DRAFT = "draft", _("Draft")
    REQUESTED = "requested", _("Requested")
    RECEIVED = "received", _("Received")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    IN_PROGRESS = "in-progress", _("In progress")
    ON_HOLD = "on-hold", _("On hold")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    ENTERED_IN_ERROR = "entered-in-error", _("Entered in error")


def status_label(code: str) -> str:
    """A status code's label in the active language; the code itself if unknown."""
    return str(Status(code).label) if code in Status.values else code


TERMINAL_STATUSES = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.REJECTED, Status.CANCELLED, Status.ENTERED_IN_ERROR}
)
#: After these the receiver keeps only the metadata.
REVOKING_STATUSES = frozenset({Status.REJECTED, Status.CANCELLED, Status.ENTERED_IN_ERROR})

# --- the working day's status sets and the overdue rule: defined here once, for every page, list, ----
# --- dashboard, service and reminder (the notifications app gets them through what referrals registers)

#: Sent and waiting for the receiver's answer (accept or reject), in lifecycle order.
AWAITING_ANSWER_STATUSES = (Status.REQUESTED, Status.RECEIVED)
#: Accepted: the receiver is serving the person.
IN_SERVICE_STATUSES = (Status.ACCEPTED, Status.IN_PROGRESS, Status.ON_HOLD)
#: Inbound referrals someone can still work on (take, assign): awaiting an answer or in service.
ASSIGNABLE_STATUSES = AWAITING_ANSWER_STATUSES + IN_SERVICE_STATUSES
#: Not finished yet (drafts included).
OPEN_STATUSES = tuple(s for s in Status if s not in TERMINAL_STATUSES)


def overdue(now: datetime.datetime | None = None) -> Q:
    """The overdue rule as a filter on referrals: still awaiting the receiver's answer after
    ``response_due_at`` (a referral without a due date is never overdue)."""
    return Q(status__in=AWAITING_ANSWER_STATUSES, response_due_at__lt=now or timezone.now())


def time_left(referral, now: datetime.datetime) -> datetime.timedelta | None:
    """Until the answer is due — negative once :func:`overdue` — while the referral awaits an answer;
    ``None`` otherwise (the same rule as the filter, for one referral already loaded)."""
    if referral.status not in AWAITING_ANSWER_STATUSES or referral.response_due_at is None:
        return None
    return referral.response_due_at - now


class Urgency(models.TextChoices):
    EMERGENCY = "emergency", _("Emergency (24 h)")
    URGENT = "urgent", _("Urgent (72 h)")
    NORMAL = "normal", _("Normal (14 days)")


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Unknown")


class DocumentType(models.TextChoices):
    PASSPORT = "passport", _("Passport")
    NATIONAL_ID = "national_id", _("National ID")
    OTHER = "other", _("Other")
    NONE = "none", _("None")


class DataCategory(models.TextChoices):
    IDENTITY = "identity", _("Identity")
    CONTACT = "contact", _("Contact")
    DOCUMENTS = "documents", _("Documents")
    PROTECTION_NEEDS = "protection_needs", _("Protection needs")


#: Which subject fields each consented data category releases to the receiver (contract §4).
CATEGORY_FIELDS = {
    DataCategory.IDENTITY: (
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "nationality",
        "languages",
        "is_minor",
    ),
    DataCategory.CONTACT: ("phone", "email", "current_location"),
    DataCategory.DOCUMENTS: ("document_type", "document_number"),
    DataCategory.PROTECTION_NEEDS: ("protection_needs",),
}
SUBJECT_FIELDS = tuple(f for fields in CATEGORY_FIELDS.values() for f in fields)


class ConsentGivenBy(models.TextChoices):
    SELF = "self", _("The person")
    GUARDIAN = "guardian", _("Guardian")


class ConsentMethod(models.TextChoices):
    VERBAL = "verbal", _("Verbal")
    WRITTEN = "written", _("Written")


class Side(models.TextChoices):
    SENDER = "sender", _("Sender")
    RECEIVER = "receiver", _("Receiver")
