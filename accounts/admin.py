"""The Django admin: for superusers only (staff who are not superusers are refused), and never personal data.

Institutions' day-to-day administration (staff, API clients, webhooks) is in the web UI, where every change is
audited; the Django admin is the operators' view of the installation: institutions, accounts, API clients
(metadata only: a token is shown once, at creation in the web UI) and the TOTP devices (no keys, no QR codes).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.recorder import record

from .models import ApiClient, Institution, User

# The site itself (superusers with a verified second factor only) is accounts.admin_site.OperatorsAdminSite,
# installed as the default admin site by accounts.apps.OperatorsAdminConfig.


def _record_admin_change(
    request, *, action: str, object_type: str, object_id, institution, detail: dict
) -> None:
    """One audit event for a change made in the Django admin, by the signed-in superuser.

    Besides Django's own admin history: the audit chain is what supervisors read and ``verify_audit``
    checks. Field names only, never values (a new password is "password", not the password).
    """
    from .actor import client_ip

    user = request.user
    record(
        action=action,
        actor_type="user",
        actor_id=str(user.pk),
        actor_label=user.username,
        actor_institution=user.institution.code if user.institution_id else "",
        object_type=object_type,
        object_id=object_id,
        institutions=[institution] if institution is not None else [],
        ip=client_ip(request),
        request_id=getattr(request, "request_id", ""),
        detail={"via": "django-admin", **detail},
    )


class AuditedAdmin(admin.ModelAdmin):
    """Every addition and change saved here is also an audit event: ``<audit_object_type>.created`` or
    ``.updated``, with the names of the fields the form changed."""

    audit_object_type = ""

    def audit_institution(self, obj):
        """The institution whose supervisors see the event."""
        return None

    def construct_change_message(self, request, form, formsets, add=False):
        # Called for every save of a form (add, change, a user's password form) before it is logged.
        request._admin_changed_fields = sorted(getattr(form, "changed_data", []))
        return super().construct_change_message(request, form, formsets, add)

    def _audit(self, request, obj, verb: str) -> None:
        fields = getattr(request, "_admin_changed_fields", [])
        _record_admin_change(
            request,
            action=f"{self.audit_object_type}.{verb}",
            object_type=self.audit_object_type,
            object_id=obj.pk,
            institution=self.audit_institution(obj),
            detail={"fields": fields},
        )

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._audit(request, obj, "created")
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        self._audit(request, obj, "updated")
        return entry


class ReadOnlyAdmin(admin.ModelAdmin):
    """Lists and detail pages only: writes go through the services (audited, encrypted)."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- institutions and their staff ---------------------------------------------------------------------


@admin.register(Institution)
class InstitutionAdmin(AuditedAdmin):
    audit_object_type = "institution"
    list_display = ["code", "name", "require_2fa_for_caseworkers", "created_at"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "require_2fa_for_caseworkers", "created_at"]
    readonly_fields = ["created_at"]

    def audit_institution(self, obj):
        return obj

    def get_readonly_fields(self, request, obj=None):
        # The code is in every reference, audit event and permission group name: fixed once created.
        return [*self.readonly_fields, "code"] if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class StaffUserAdmin(AuditedAdmin, UserAdmin):
    """Staff accounts (staff identifiers only; migrants are never users)."""

    audit_object_type = "user"

    def audit_institution(self, obj):
        return obj.institution

    list_display = ["username", "institution", "role", "is_active", "is_superuser", "last_login"]
    list_filter = ["institution", "role", "is_active", "is_superuser"]
    search_fields = ["username"]
    ordering = ["username"]
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = ()
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Institution"), {"fields": ["institution", "role", "language", "email"]}),
        (_("Access"), {"fields": ["is_active", "is_staff", "is_superuser"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["username", "institution", "role", "password1", "password2"],
            },
        )
    ]

    def has_delete_permission(self, request, obj=None):
        # Deactivate instead: cases, referrals and the audit log keep pointing at the account.
        return False


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyAdmin):
    """Metadata of partner systems' clients; created in the web UI (the token is shown there, once)."""

    list_display = [
        "name",
        "institution",
        "token_prefix",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["institution"]
    search_fields = ["name", "token_prefix"]
    fields = ["id", "name", "institution", "scopes", "token_prefix", "created_at", "expires_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    @admin.action(description=_("Revoke the selected API clients"))
    def revoke(self, request, queryset):
        count = 0
        for client in queryset.filter(revoked_at__isnull=True).select_related("institution"):
            client.revoked_at = timezone.now()
            client.save(update_fields=["revoked_at"])
            _record_admin_change(
                request,
                action="api_client.revoked",
                object_type="api_client",
                object_id=client.pk,
                institution=client.institution,
                detail={},
            )
            count += 1
        messages.success(request, _("%(count)d API client(s) revoked.") % {"count": count})


# --- second-factor devices: list and remove, never the keys ----------------------------------------


class DeviceAdmin(admin.ModelAdmin):
    """A lost phone: delete the device and the user enrols a new one at the next sign-in."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["user__username"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for device in queryset:
            user = device.user
            _record_admin_change(
                request,
                action="user.second_factor_reset",
                object_type="user",
                object_id=user.pk,
                institution=user.institution if user.institution_id else None,
                detail={"devices": 1, "device_type": device._meta.model_name},
            )
        return entries


site = admin.site
for _model in (TOTPDevice, StaticDevice):
    if site.is_registered(_model):
        site.unregister(_model)
    site.register(_model, DeviceAdmin)
