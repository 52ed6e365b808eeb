"""The Django admin: for superusers only (staff who are not superusers are refused), and never personal data.

Institutions' day-to-day administration (staff, API clients, webhooks) is in the web UI; the Django admin is
the operators' view of the installation: institutions, accounts, API clients (metadata only: a token is shown
once, at creation in the web UI) and the TOTP devices (no keys, no QR codes).

It is a door like the others: its actions (revoke a client, delete a device or a webhook) call the services,
as an operator (``accounts.actor.operator_actor``), and the forms it saves itself ask ``accounts.policy`` and
are recorded by ``accounts.services.operator_change_record``. A user's institution is read-only here (and
fixed in the database).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import policy, services
from .actor import operator_actor
from .models import ApiClient, Institution, Office, User

# The site itself (superusers with a verified second factor only) is accounts.admin_site.OperatorsAdminSite,
# installed as the default admin site by accounts.apps.OperatorsAdminConfig.


class AuditedAdmin(admin.ModelAdmin):
    """Every addition and change saved here is also an audit event (``accounts.services.OPERATOR_ACTIONS``),
    with the names of the fields the form changed — recorded by the accounts service, as the operator."""

    audit_object_type = ""

    def audit_institution(self, obj):
        """The institution concerned by the change (the operator acts on it)."""
        return None

    def construct_change_message(self, request, form, formsets, add=False):
        # Django calls this once for every form it saved (an addition, a change, a user's password form),
        # after the save and inside the admin's transaction, with that form: its ``changed_data`` names the
        # fields changed.
        message = super().construct_change_message(request, form, formsets, add)
        obj = form.user if hasattr(form, "user") and not hasattr(form, "instance") else form.instance
        services.operator_change_record(
            actor=operator_actor(request, self.audit_institution(obj)),
            object_type=self.audit_object_type,
            obj=obj,
            created=add,
            fields=list(form.changed_data),
        )
        return message


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
        (_("Institution"), {"fields": ["institution", "office", "role", "language", "email"]}),
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

    def get_readonly_fields(self, request, obj=None):
        # A user never moves to another institution (the database refuses it too).
        return [*self.readonly_fields, "institution"] if obj is not None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        """The account policy decides here as at the other doors: no change of one's own role, no
        deactivation of oneself; a new username follows the same rules as everywhere."""
        base = super().get_form(request, obj, **kwargs)

        class PolicyForm(base):
            def clean(form):
                data = super().clean()
                if obj is None:
                    username = data.get("username")
                    if username:
                        try:
                            services.validate_new_username(username)
                        except forms.ValidationError as exc:
                            form.add_error(None, exc)
                    return data
                actor = operator_actor(request, obj.institution)
                if "role" in data and not policy.may_change_role(actor, obj, data["role"]):
                    form.add_error("role", _("You cannot change your own role."))
                if data.get("is_active") is False and obj.is_active and not policy.may_deactivate(actor, obj):
                    form.add_error("is_active", _("You cannot deactivate your own account."))
                return data

        return PolicyForm


@admin.register(Office)
class OfficeAdmin(admin.ModelAdmin):
    """Offices (contract §7.2): saved, paused and resumed through the accounts services (audited there, as
    the operator). The code is fixed once created; an office is never deleted (staff and referrals point
    at it)."""

    list_display = ["code", "institution", "name", "province", "accepting_referrals", "paused_until"]
    list_filter = ["institution", "province", "accepting_referrals"]
    search_fields = ["code", "name"]
    fields = ["institution", "code", "name", "province", "services", "languages"]
    actions = ["pause", "resume"]

    def get_readonly_fields(self, request, obj=None):
        return ["institution", "code"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # An office of a remote institution is its node's (contract §7.4): shown, never changed here.
        if obj is not None and obj.institution.is_remote:
            return False
        return super().has_change_permission(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        """The office rules of the service (``check_office_fields``) decide here as at the other doors."""
        base = super().get_form(request, obj, **kwargs)

        class OfficeForm(base):
            def clean(form):
                data = super().clean()
                office = form.instance
                try:
                    services.check_office_fields(
                        code=data.get("code", office.code) or "",
                        name=data.get("name") or "",
                        province=data.get("province") or "",
                        services=data.get("services") or [],
                        languages=data.get("languages") or [],
                    )
                except forms.ValidationError as exc:
                    for field, errors in exc.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                return data

        return OfficeForm

    def save_model(self, request, obj, form, change):
        saved, _created = services.office_save(
            institution=obj.institution,
            code=obj.code,
            name=obj.name,
            province=obj.province,
            services=obj.services,
            languages=obj.languages,
            actor=operator_actor(request, obj.institution),
        )
        obj.pk = saved.pk

    def _each(self, request, queryset, change) -> bool:
        """``change(office, actor)`` for each office; the service's refusal (an office of a remote
        institution) is shown, and the others are still changed. True when none was refused."""
        done = True
        for office in queryset.select_related("institution"):
            try:
                change(office, operator_actor(request, office.institution))
            except forms.ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                done = False
        return done

    @admin.action(description=_("Pause the selected offices (until resumed)"))
    def pause(self, request, queryset):
        if self._each(
            request, queryset, lambda office, actor: services.office_pause(office=office, actor=actor)
        ):
            messages.success(request, _("Offices paused."))

    @admin.action(description=_("Resume the selected offices"))
    def resume(self, request, queryset):
        if self._each(
            request, queryset, lambda office, actor: services.office_resume(office=office, actor=actor)
        ):
            messages.success(request, _("Offices resumed."))


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
            actor = operator_actor(request, client.institution)
            count += services.api_client_revoke(client=client, actor=actor)
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

    def delete_model(self, request, obj):
        """The delete page: the accounts service removes the device and records the reset."""
        user = obj.user
        services.staff_user_reset_second_factor(
            actor=operator_actor(request, user.institution), user=user, devices=[obj]
        )

    def delete_queryset(self, request, queryset):
        """The "delete selected" action: one service call (and one event) per device."""
        for device in queryset.select_related("user__institution"):
            self.delete_model(request, device)


site = admin.site
for _model in (TOTPDevice, StaticDevice):
    if site.is_registered(_model):
        site.unregister(_model)
    site.register(_model, DeviceAdmin)
