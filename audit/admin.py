"""The audit log in the Django admin: read-only (no add, change or delete; the database refuses them too)."""

from __future__ import annotations

from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "sequence",
        "at",
        "actor_type",
        "actor_label",
        "actor_institution",
        "action",
        "object_type",
        "object_id",
        "outcome",
    ]
    list_filter = ["action", "actor_institution", "outcome", "actor_type"]
    search_fields = ["=action", "=object_id", "=case_id", "=actor_label", "=request_id"]
    date_hierarchy = "at"
    ordering = ["-sequence"]
    fields = [
        "sequence",
        "at",
        "actor_type",
        "actor_id",
        "actor_label",
        "actor_institution",
        "action",
        "object_type",
        "object_id",
        "case_id",
        "institutions",
        "outcome",
        "ip",
        "request_id",
        "detail",
        "prev_hash",
        "hash",
    ]
    readonly_fields = fields
    actions = None
    show_full_result_count = False

    # Read-only, like every admin of the project (the database refuses changes to events anyway).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
