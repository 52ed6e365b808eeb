"""Institution admins' pages: staff and roles, API clients (token shown once), webhooks (secret once)."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import directory, policy, services
from accounts.models import ApiClient, User
from accounts.services import api_client_create, api_client_revoke
from notifications import selectors as n_selectors
from notifications import services as n_services

from ..access import admin_required, offices_admin_required
from ..forms import ApiClientForm, OfficeForm, OfficePauseForm, StaffUserForm, WebhookForm

USERS_PAGE_SIZE = 50


@admin_required
@require_GET
def user_list(request):
    institution = request.actor.institution
    page = Paginator(
        User.objects.filter(institution=institution)
        .select_related("institution", "office")
        .order_by("username"),
        USERS_PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    users = list(page.object_list)
    with_device = set(
        TOTPDevice.objects.filter(user__in=users, confirmed=True).values_list("user_id", flat=True)
    )
    for user in users:
        user.has_device = user.pk in with_device
        # The page asks the account policy which buttons to show (the service refuses the others anyway).
        user.may_toggle_active = (
            policy.may_deactivate(request.actor, user)
            if user.is_active
            else policy.may_manage_staff(request.actor, user)
        )
    context = {"users": users, "page": page, "has_offices": bool(_offices(request.actor))}
    return render(request, "web/manage/users.html", context)


@never_cache
@admin_required
@require_http_methods(["GET", "POST"])
def user_create(request):
    form = StaffUserForm(
        request.POST or None,
        initial={"role": "caseworker", "language": "es"},
        offices=_offices(request.actor),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.staff_user_save(
                actor=request.actor,
                username=data["username"],
                role=data["role"],
                email=data["email"],
                language=data["language"],
                password=data["password1"],
                is_new=True,
                office=data["office"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("User %(username)s created.") % {"username": user.username})
            return redirect("web:manage-users")
    return render(request, "web/manage/user_form.html", {"form": form, "editing": None})


def _offices(actor) -> list:
    """The offices of the admin's institution (a staff member's office is one of them)."""
    return list(directory.offices(institution=actor.institution.code).order_by("name"))


def _own_user(request, user_id) -> User:
    return get_object_or_404(User, pk=user_id, institution=request.actor.institution)


@never_cache
@admin_required
@require_http_methods(["GET", "POST"])
def user_edit(request, user_id):
    user = _own_user(request, user_id)
    initial = {
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "language": user.language,
        "office": user.office.code if user.office_id else "",
    }
    form = StaffUserForm(request.POST or None, initial=initial, editing=user, offices=_offices(request.actor))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if not policy.may_change_role(request.actor, user, data["role"]):
            # Asked to show it beside the field; the service refuses it anyway.
            form.add_error("role", _("You cannot change your own role."))
        else:
            try:
                services.staff_user_save(
                    actor=request.actor,
                    username=user.username,
                    role=data["role"],
                    email=data["email"],
                    language=data["language"],
                    password=data["password1"] or None,
                    is_new=False,
                    office=data["office"],
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("User %(username)s updated.") % {"username": user.username})
                return redirect("web:manage-users")
    return render(request, "web/manage/user_form.html", {"form": form, "editing": user})


@admin_required
@require_POST
def user_set_active(request, user_id):
    user = _own_user(request, user_id)
    active = request.POST.get("active") == "1"
    try:
        services.staff_user_set_active(actor=request.actor, user=user, active=active)
    except ValidationError:
        messages.error(request, _("You cannot deactivate your own account."))
    else:
        messages.success(
            request,
            (_("User %(username)s reactivated.") if active else _("User %(username)s deactivated."))
            % {"username": user.username},
        )
    return redirect("web:manage-users")


@admin_required
@require_POST
def user_reset_second_factor(request, user_id):
    user = _own_user(request, user_id)
    services.staff_user_reset_second_factor(actor=request.actor, user=user)
    messages.success(
        request,
        _("Two-factor sign-in of %(username)s was reset: they set it up again at their next sign-in.")
        % {"username": user.username},
    )
    return redirect("web:manage-users")


@admin_required
@require_GET
def api_client_list(request):
    clients = ApiClient.objects.filter(institution=request.actor.institution).order_by("-created_at")
    return render(request, "web/manage/api_clients.html", {"clients": clients, "now": timezone.now()})


@never_cache
@admin_required
@require_http_methods(["GET", "POST"])
def api_client_new(request):
    """Create a client: the token is in this one response only (never stored, never shown again)."""
    form = ApiClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        expires_at = None
        if data["expires_on"]:
            expires_at = datetime.datetime.combine(
                data["expires_on"], datetime.time.min, tzinfo=timezone.get_current_timezone()
            )
        try:
            client, token = api_client_create(
                institution=request.actor.institution,
                name=data["name"],
                scopes=list(data["scopes"]),
                expires_at=expires_at,
                actor=request.actor,
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            response = render(request, "web/manage/api_client_token.html", {"client": client, "token": token})
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "web/manage/api_client_form.html", {"form": form})


@admin_required
@require_POST
def api_client_revoke_view(request, client_id):
    client = get_object_or_404(ApiClient, pk=client_id, institution=request.actor.institution)
    if api_client_revoke(client=client, actor=request.actor):
        messages.success(request, _("API client %(name)s revoked.") % {"name": client.name})
    return redirect("web:manage-api-clients")


def _webhooks():
    return n_selectors, n_services


@admin_required
@require_GET
def webhook_list(request):
    n_selectors, _n = _webhooks()
    return render(
        request, "web/manage/webhooks.html", {"webhooks": n_selectors.webhooks_for(request.actor.institution)}
    )


@never_cache
@admin_required
@require_http_methods(["GET", "POST"])
def webhook_new(request):
    """Subscribe a partner URL: the signing secret is in this one response only."""
    _s, n_services = _webhooks()
    event_types = getattr(n_services, "WEBHOOK_EVENT_TYPES", ())
    form = WebhookForm(request.POST or None, event_types=event_types)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = n_services.webhook_create(
                institution=request.actor.institution,
                url=form.cleaned_data["url"],
                events=list(form.cleaned_data["events"]),
                actor=request.actor,
            )
        except ValueError as exc:
            # The service's messages are English and technical: the page says it in the user's language.
            fields = set(getattr(exc, "errors", None) or {"url": None})
            if "url" in fields or not fields & {"events"}:
                form.add_error(
                    "url",
                    _(
                        "This address cannot receive webhooks: use a public https address, reachable from "
                        "the internet, without a user name or password."
                    ),
                )
            if "events" in fields:
                form.add_error("events", _("Choose at least one of the events listed."))
        else:
            response = render(
                request, "web/manage/webhook_secret.html", {"endpoint": endpoint, "secret": secret}
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "web/manage/webhook_form.html", {"form": form})


@admin_required
@require_POST
def webhook_delete(request, webhook_id):
    n_selectors, n_services = _webhooks()
    endpoint = n_selectors.webhooks_for(request.actor.institution).filter(pk=webhook_id).first()
    if endpoint is None:
        raise Http404
    n_services.webhook_delete(
        institution=request.actor.institution, endpoint_id=endpoint.pk, actor=request.actor
    )
    messages.success(request, _("Webhook removed."))
    return redirect("web:manage-webhooks")


# --- offices (contract §7.2): through the accounts services, which ask ``may_manage_offices`` -----------


def _own_office(request, code):
    office = directory.office_of(request.actor.institution.pk, code)
    if office is None:
        raise Http404
    return office


@never_cache
@offices_admin_required
@require_GET
def office_list(request):
    """The institution's offices, with their state and the forms to pause and resume them."""
    offices = _offices(request.actor)
    return render(
        request,
        "web/manage/offices.html",
        {"offices": offices, "pause_form": OfficePauseForm(), "today": timezone.localdate()},
    )


def _save_office(request, form, *, code):
    data = form.cleaned_data
    try:
        office, created = services.office_save(
            institution=request.actor.institution,
            code=code,
            name=data["name"],
            province=data["province"],
            services=list(data["services"]),
            languages=list(data["languages"]),
            actor=request.actor,
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for name, errors in exc.error_dict.items():
                form.add_error(name if name in form.fields else None, errors)
        else:
            form.add_error(None, exc)
        return None
    text = _("Office %(name)s created.") if created else _("Office %(name)s saved.")
    messages.success(request, text % {"name": office.name})
    return redirect("web:manage-offices")


@never_cache
@offices_admin_required
@require_http_methods(["GET", "POST"])
def office_create(request):
    form = OfficeForm(request.POST or None, initial={"languages": ["es"]})
    if request.method == "POST" and form.is_valid():
        if directory.office_of(request.actor.institution.pk, form.cleaned_data["code"]) is not None:
            form.add_error("code", _("Your institution already has an office with this code."))
        else:
            response = _save_office(request, form, code=form.cleaned_data["code"])
            if response is not None:
                return response
    return render(request, "web/manage/office_form.html", {"form": form, "editing": None})


@never_cache
@offices_admin_required
@require_http_methods(["GET", "POST"])
def office_edit(request, code):
    office = _own_office(request, code)
    initial = {
        "code": office.code,
        "name": office.name,
        "province": office.province,
        "services": office.services,
        "languages": office.languages,
    }
    form = OfficeForm(request.POST or None, initial=initial, editing=office)
    if request.method == "POST" and form.is_valid():
        response = _save_office(request, form, code=office.code)
        if response is not None:
            return response
    return render(request, "web/manage/office_form.html", {"form": form, "editing": office})


@offices_admin_required
@require_POST
def office_pause_view(request, code):
    """Pause an office: until a date (or until resumed), with an optional reason shown to senders."""
    office = _own_office(request, code)
    form = OfficePauseForm(request.POST)
    if not form.is_valid():
        messages.error(request, next(iter(form.errors.values()))[0])
        return redirect("web:manage-offices")
    try:
        services.office_pause(
            office=office,
            until=form.cleaned_data["paused_until"],
            reason=form.cleaned_data["pause_reason"],
            actor=request.actor,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Office %(name)s paused.") % {"name": office.name})
    return redirect("web:manage-offices")


@offices_admin_required
@require_POST
def office_resume_view(request, code):
    office = _own_office(request, code)
    services.office_resume(office=office, actor=request.actor)
    messages.success(request, _("Office %(name)s accepts referrals again.") % {"name": office.name})
    return redirect("web:manage-offices")
