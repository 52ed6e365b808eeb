"""Cases and referrals in the Django admin: identifiers, references, institutions, statuses and dates only.

Nothing encrypted is listed, shown or searched (the subject, the case summary, reasons, outcomes, notes,
consent details): those are read in the web UI, where each read is audited. Read-only: every write goes
through ``referrals.services`` (permissions, encryption, audit).
"""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin

from .models import Case, Referral, ReferralEvent


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["reference", "institution", "created_at", "closed_at", "erased_at"]
    list_filter = ["institution"]
    search_fields = ["reference"]
    date_hierarchy = "created_at"
    fields = ["id", "reference", "institution", "created_at", "updated_at", "closed_at", "erased_at"]
    readonly_fields = fields


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "from_institution",
        "to_institution",
        "status",
        "sent_at",
        "response_due_at",
        "answered_at",
        "updated_at",
    ]
    list_filter = ["status", "from_institution", "to_institution"]
    search_fields = ["reference"]
    list_select_related = ["from_institution", "to_institution"]
    fields = [
        "id",
        "reference",
        "case",
        "from_institution",
        "to_institution",
        "status",
        "created_at",
        "sent_at",
        "response_due_at",
        "answered_at",
        "receiver_access_revoked_at",
        "updated_at",
    ]
    readonly_fields = fields


@admin.register(ReferralEvent)
class ReferralEventAdmin(ReadOnlyAdmin):
    """The referrals' timelines (actions and statuses; the free text stays encrypted on the referral)."""

    list_display = ["referral", "at", "actor_institution", "action", "from_status", "to_status"]
    list_filter = ["action", "to_status", "actor_institution"]
    search_fields = ["referral__reference"]
    list_select_related = ["referral", "actor_institution"]
    fields = ["referral", "at", "actor_institution", "action", "from_status", "to_status", "sequence"]
    readonly_fields = fields
