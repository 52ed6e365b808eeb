"""Sign-in (password, then TOTP for the roles that need it), first enrolment of a TOTP device, logout."""

from __future__ import annotations

import io
from urllib.parse import quote

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services

from ..forms import OtpTokenForm, SignInForm
from ..middleware import has_confirmed_device, needs_second_factor, second_factor_pending


def safe_next(request, default: str = "/") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or default
    if url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}, require_https=False):
        return candidate
    return default


class SignInView(LoginView):
    """``/accounts/login/``: username and password; then the TOTP step when the role requires it."""

    form_class = SignInForm
    template_name = "web/auth/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.get_user()
        if needs_second_factor(user):
            target = settings.OTP_VERIFY_URL if has_confirmed_device(user) else settings.OTP_SETUP_URL
            return redirect(f"{target}?next={quote(self.get_success_url())}")
        return response


def _second_factor_passed(request, device) -> None:
    """The second factor succeeded: the session is marked verified and gets a new key (a session id seen
    before this step — e.g. between the two steps — is worth nothing afterwards)."""
    otp_login(request, device)
    request.session.pop("otp_failures", None)
    request.session.cycle_key()


def _second_factor_done(request) -> bool:
    return not second_factor_pending(request.user)


@sensitive_post_parameters("otp_token")
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def otp_verify(request):
    """The second step for a user with a confirmed device."""
    user = request.user
    if _second_factor_done(request):
        return redirect(safe_next(request))
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    if not devices:
        return redirect(f"{settings.OTP_SETUP_URL}?next={quote(safe_next(request))}")
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = services.second_factor_verify(
            user=user,
            token=form.cleaned_data["otp_token"],
            failures=request.session.get("otp_failures", 0),
            ip=request.META.get("REMOTE_ADDR"),
            request_id=request.request_id,
        )
        if outcome.device is not None:
            _second_factor_passed(request, outcome.device)
            return redirect(safe_next(request))
        if outcome.locked:
            logout(request)
            messages.error(request, _("Too many wrong codes. Sign in again."))
            return redirect(settings.LOGIN_URL)
        request.session["otp_failures"] = outcome.failures
        if outcome.throttled:
            message = _("The code is not correct. Wait a few seconds and try the new code.")
        elif outcome.reused:
            message = _(
                "This code was already used: each code signs in once. Wait until the app shows the next "
                "code (at most 30 seconds) and type that one."
            )
        else:
            message = _("The code is not correct.")
        form.add_error("otp_token", message)
    return render(request, "web/auth/otp_verify.html", {"form": form, "next": safe_next(request)})


def _qr_svg(data: str) -> str:
    """The enrolment QR code as inline SVG (attributes only, no style: allowed by the CSP)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    return svg[svg.index("<svg") :]


@sensitive_post_parameters("otp_token")
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def otp_setup(request):
    """First sign-in of a user whose role needs two-factor and who has no device yet: scan, confirm."""
    user = request.user
    if _second_factor_done(request) and has_confirmed_device(user):
        return redirect(safe_next(request))
    if has_confirmed_device(user):
        # A new device only through an admin's reset: a stolen password must not enrol one. A device
        # confirmed meanwhile (e.g. the demo's ``demo_otp_code`` while this page was open) checks the
        # code just typed here, instead of asking for a second one on another page.
        if request.method == "POST":
            return otp_verify(request)
        return redirect(f"{settings.OTP_VERIFY_URL}?next={quote(safe_next(request))}")
    device = services.totp_enrolment_device(user=user)
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.totp_enrolment_confirm(user=user, device=device, token=form.cleaned_data["otp_token"]):
            device.refresh_from_db()
            _second_factor_passed(request, device)
            messages.success(request, _("Two-factor sign-in is set up."))
            return redirect(safe_next(request))
        form.add_error("otp_token", _("The code is not correct. Check the phone's clock and try again."))
    secret = device.config_url.split("secret=")[1].split("&")[0]
    context = {
        "form": form,
        "next": safe_next(request),
        "qr_svg": mark_safe(_qr_svg(device.config_url)),  # noqa: S308 - generated by us, no user input
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
    }
    response = render(request, "web/auth/otp_setup.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def logout_view(request):
    """POST only (a link or an image must not sign anyone out)."""
    logout(request)
    messages.info(request, _("You have signed out."))
    return redirect(settings.LOGOUT_REDIRECT_URL)
