"""The user's own pages: in-app notifications and preferences (language, e-mail per kind of event)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from notifications import selectors as n_selectors
from notifications import services as n_services

from ..forms import PreferencesForm
from .auth import safe_next


def _notifications():
    return n_selectors, n_services


@require_http_methods(["GET"])
def notification_list(request):
    n_selectors, _n = _notifications()
    items = n_selectors.notifications_for(request.user).select_related("referral")
    page = Paginator(items, 30).get_page(request.GET.get("page"))
    return render(request, "web/notifications.html", {"page": page})


@require_POST
def notification_open(request, notification_id: uuid.UUID):
    """Mark one as read and go to its referral (if the user may still see it, the page decides)."""
    n_selectors, n_services = _notifications()
    notification = n_selectors.notifications_for(request.user).filter(pk=notification_id).first()
    if notification is None:
        return redirect("web:notifications")
    n_services.notification_mark_read(user=request.user, notification_id=notification.pk)
    if notification.referral_id:
        return redirect("web:referral-detail", referral_id=notification.referral_id)
    return redirect("web:notifications")


@require_POST
def notification_read_all(request):
    _s, n_services = _notifications()
    n_services.notification_mark_all_read(user=request.user)
    messages.success(request, _("All notifications are marked as read."))
    return redirect("web:notifications")


@require_http_methods(["GET", "POST"])
def preferences(request):
    n_selectors, n_services = _notifications()
    current = n_selectors.preferences_for(request.user)
    initial = {"language": request.user.language}
    initial.update({PreferencesForm.field_name(t): on for t, on in current.items()})
    form = PreferencesForm(request.POST or None, initial=initial, event_types=list(current))
    if request.method == "POST" and form.is_valid():
        services.user_language_set(user=request.user, language=form.cleaned_data["language"])
        n_services.preferences_update(user=request.user, preferences=form.email_preferences())
        translation.activate(form.cleaned_data["language"])
        messages.success(request, _("Your preferences were saved."))
        return redirect("web:preferences")
    return render(request, "web/preferences.html", {"form": form})


@require_POST
def language_set(request):
    """The header's language switch: remembered on the user."""
    language = request.POST.get("language", "")
    if language in ("es", "en"):
        services.user_language_set(user=request.user, language=language)
    return redirect(safe_next(request))


def favicon(request):
    """``/favicon.ico`` (browsers ask for it on their own): the static icon, never a 404."""
    from django.shortcuts import redirect
    from django.templatetags.static import static

    response = redirect(static("favicon.ico"))
    response["Cache-Control"] = "public, max-age=86400"
    return response
