"""Sign-in through the real pages: password, the TOTP step and first enrolment for the roles that need
it, lockout after repeated failures, idle timeout, and the audit trail of each step."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.choices import Role
from audit.models import AuditEvent

PASSWORD = "a-long-test-password-2026"


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


@pytest.fixture
def person(iom, make_user):
    def make(role=Role.CASEWORKER, username="signin.user", device=False):
        user = make_user(iom, role, username=username)
        user.set_password(PASSWORD)
        user.save()
        if device:
            TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        return user

    return make


def sign_in(client: Client, username: str, password: str = PASSWORD, next_url: str = "/"):
    return client.post(f"/accounts/login/?next={next_url}", {"username": username, "password": password})


def test_the_sign_in_page_has_labelled_fields_and_no_menu(db):
    page = Client().get("/accounts/login/").content.decode()
    assert 'id="login-form"' in page
    for name in ("username", "password"):
        field_id = re.search(rf'name="{name}"[^>]*id="([^"]+)"', page).group(1)
        assert f'for="{field_id}"' in page
    assert 'class="main-nav"' not in page


def test_caseworker_signs_in_with_the_password_only(person):
    person(username="cw.one")
    client = Client()
    response = sign_in(client, "cw.one", next_url="/notifications/")
    assert response.status_code == 302 and response["Location"] == "/notifications/"
    assert client.get("/notifications/").status_code == 200


def test_wrong_password_is_refused_and_recorded(person):
    person(username="cw.two")
    response = sign_in(Client(), "cw.two", "not-the-password")
    assert response.status_code == 200
    assert "form-errors" in response.content.decode()
    event = AuditEvent.objects.filter(action="auth.login_failed").latest("sequence")
    assert "not-the-password" not in str(event.detail)


def test_supervisor_must_pass_the_totp_step(person):
    user = person(Role.SUPERVISOR, username="sup.one", device=True)
    device = TOTPDevice.objects.get(user=user)
    client = Client()
    response = sign_in(client, "sup.one", next_url="/audit/")
    assert response.status_code == 302 and response["Location"].startswith(settings.OTP_VERIFY_URL)
    # Nothing else is reachable before the code.
    for path in ("/", "/audit/", "/supervision/workload/"):
        assert client.get(path)["Location"].startswith(settings.OTP_VERIFY_URL)
    wrong = client.post(settings.OTP_VERIFY_URL, {"otp_token": "000000", "next": "/audit/"})
    assert wrong.status_code == 200 and 'id="otp-form"' in wrong.content.decode()
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    ok = client.post(settings.OTP_VERIFY_URL, {"otp_token": code_for(device), "next": "/audit/"})
    assert ok.status_code == 302 and ok["Location"] == "/audit/"
    assert client.get("/audit/").status_code == 200


def test_admin_without_a_device_enrols_one_with_a_qr_code(person):
    person(Role.ADMIN, username="adm.one")
    client = Client()
    response = sign_in(client, "adm.one")
    assert response["Location"].startswith(settings.OTP_SETUP_URL)
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and 'class="secret"' in html
    assert "no-store" in page["Cache-Control"]
    device = TOTPDevice.objects.get(user__username="adm.one", confirmed=False)
    # Reloading keeps the same device (the QR code does not change under the user's feet).
    client.get(settings.OTP_SETUP_URL)
    assert TOTPDevice.objects.filter(user__username="adm.one").count() == 1
    done = client.post(settings.OTP_SETUP_URL, {"otp_token": code_for(device), "next": "/manage/users/"})
    assert done.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/manage/users/").status_code == 200


def test_a_second_device_cannot_be_enrolled_with_a_password_alone(person):
    person(Role.SUPERVISOR, username="sup.two", device=True)
    client = Client()
    sign_in(client, "sup.two")
    response = client.get(settings.OTP_SETUP_URL)
    assert response["Location"].startswith(settings.OTP_VERIFY_URL)
    assert TOTPDevice.objects.filter(user__username="sup.two").count() == 1


def test_institution_can_require_two_factor_for_caseworkers(iom, person):
    iom.require_2fa_for_caseworkers = True
    iom.save()
    person(username="cw.strict")
    client = Client()
    assert sign_in(client, "cw.strict")["Location"].startswith(settings.OTP_SETUP_URL)


def test_repeated_failures_lock_the_account_out(person):
    person(username="cw.locked")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "cw.locked", "wrong-password")
    locked = sign_in(client, "cw.locked")  # even the right password
    assert locked.status_code == 429
    assert 'id="login-form"' not in locked.content.decode()
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_too_many_wrong_codes_close_the_session(person):
    person(Role.SUPERVISOR, username="sup.three", device=True)
    client = Client()
    sign_in(client, "sup.three")
    for _ in range(5):
        client.post(settings.OTP_VERIFY_URL, {"otp_token": "000000"})
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_sessions_expire_after_idle_time_and_on_browser_close(person):
    assert settings.SESSION_COOKIE_AGE <= 3600
    assert settings.SESSION_SAVE_EVERY_REQUEST and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    person(username="cw.idle")
    client = Client()
    sign_in(client, "cw.idle")
    session = client.session
    session.set_expiry(-1)
    session.save()
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_login_and_logout_are_audited_without_secrets(person):
    person(username="cw.audit")
    client = Client()
    sign_in(client, "cw.audit")
    client.post("/accounts/logout/")
    actions = list(AuditEvent.objects.filter(actor_label="cw.audit").values_list("action", flat=True))
    assert "auth.login" in actions and "auth.logout" in actions
    for event in AuditEvent.objects.all():
        assert PASSWORD not in str(event.detail)


def test_security_headers_on_pages(person):
    person(username="cw.headers")
    client = Client()
    sign_in(client, "cw.headers")
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp or "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    # Signed-in pages are never kept by the browser or a proxy (shared computers at reception points).
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_demo_otp_code_signs_a_supervisor_in_and_is_refused_in_production(person):
    from io import StringIO

    from django.core.management import CommandError, call_command
    from django.test import override_settings

    person(Role.SUPERVISOR, username="sup.demo")
    out = StringIO()
    call_command("demo_otp_code", "sup.demo", stdout=out)
    code = out.getvalue().strip()
    assert re.fullmatch(r"\d{6}", code)
    client = Client()
    sign_in(client, "sup.demo")
    assert client.post(settings.OTP_VERIFY_URL, {"otp_token": code})["Location"] == "/"
    with override_settings(IS_PRODUCTION=True), pytest.raises(CommandError):
        call_command("demo_otp_code", "sup.demo", stdout=StringIO())
