"""Door parity for the account decisions (accounts.policy): the web pages, the Django admin, the management
commands and the partner API give the same verdict and record the same audit action."""

from __future__ import annotations

import io
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.actor import actor_for_user
from accounts.choices import Role, Scope
from accounts.models import ApiClient, User
from audit.models import AuditEvent
from notifications import services as n_services
from notifications.models import WebhookEndpoint

from .conftest import PASSWORD, confirmed_device, logged_in_client

pytestmark = pytest.mark.django_db

ROLE_ERROR = "Usted no puede cambiar su propio rol."  # the admin reads the page in Spanish (their language)


def _user_form(user, **changes) -> dict:
    form = {
        "username": user.username,
        "role": user.role,
        "language": user.language,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v != ""}


# --- self-demotion and self-deactivation: the web page and the Django admin ------------------------------


def test_nobody_changes_their_own_role_at_any_door(iom_admin, iom_admin_client, superuser, superuser_client):
    web = iom_admin_client.post(
        f"/manage/users/{iom_admin.pk}/",
        {"email": iom_admin.email, "role": "caseworker", "language": "es"},
    )
    body = web.content.decode("utf-8")
    assert web.status_code == 200 and ROLE_ERROR in body
    admin = superuser_client.post(
        f"/admin/accounts/user/{superuser.pk}/change/", _user_form(superuser, role="supervisor")
    )
    assert admin.status_code == 200  # the form again, with the error
    iom_admin.refresh_from_db()
    superuser.refresh_from_db()
    assert iom_admin.role == Role.ADMIN and superuser.role == Role.CASEWORKER
    assert not AuditEvent.objects.filter(action="user.changed").exists()


def test_nobody_deactivates_themselves_at_any_door(iom_admin, iom_admin_client, superuser, superuser_client):
    iom_admin_client.post(f"/manage/users/{iom_admin.pk}/active/", {"active": "0"})
    form = _user_form(superuser)
    form.pop("is_active")
    admin = superuser_client.post(f"/admin/accounts/user/{superuser.pk}/change/", form)
    assert admin.status_code == 200
    iom_admin.refresh_from_db()
    superuser.refresh_from_db()
    assert iom_admin.is_active and superuser.is_active
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()


def test_the_admin_cannot_move_a_user_to_another_institution(iom, dp, iom_caseworker, superuser_client):
    url = f"/admin/accounts/user/{iom_caseworker.pk}/change/"
    page = superuser_client.get(url).content.decode()
    assert 'name="institution"' not in page  # shown, not editable
    response = superuser_client.post(url, _user_form(iom_caseworker, institution=dp.pk, role="supervisor"))
    assert response.status_code == 302
    iom_caseworker.refresh_from_db()
    assert iom_caseworker.institution_id == iom.pk and iom_caseworker.role == Role.SUPERVISOR
    [event] = AuditEvent.objects.filter(action="user.changed")
    assert "institution" not in event.detail["fields"] and event.detail["via"] == "django-admin"


def test_a_new_username_follows_the_same_rules_at_every_door(iom, iom_admin_client, superuser_client):
    bad = "Ana.Nueva"  # Django's own validator accepts it; the accounts rule (lower-case) does not
    web = iom_admin_client.post(
        "/manage/users/new/",
        {
            "username": bad,
            "role": "caseworker",
            "language": "es",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert web.status_code == 200
    admin = superuser_client.post(
        "/admin/accounts/user/add/",
        {
            "username": bad,
            "institution": iom.pk,
            "role": "caseworker",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert admin.status_code == 200
    with pytest.raises(CommandError):
        call_command("create_staff_user", "IOM", bad, "--role", "caseworker", stderr=io.StringIO())
    assert not User.objects.filter(username=bad).exists()


# --- the commands: the service's rules and events, with a system actor -------------------------------------


def test_create_staff_user_records_user_created_as_the_system(iom, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("123\n"))
    with pytest.raises(CommandError, match="password rejected"):
        call_command("create_staff_user", "IOM", "ana.cmd", "--role", "caseworker", "--password-stdin")
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    call_command(
        "create_staff_user",
        "IOM",
        "ana.cmd",
        "--role",
        "caseworker",
        "--password-stdin",
        stderr=io.StringIO(),
    )
    user = User.objects.get(username="ana.cmd")
    event = AuditEvent.objects.get(action="user.created", object_id=str(user.pk))
    assert (event.actor_type, event.actor_label, event.actor_institution, event.institutions) == (
        "system",
        "manage.py create_staff_user",
        "IOM",
        ",IOM,",
    )


def test_create_api_client_records_api_client_created_as_the_system(iom):
    out = io.StringIO()
    call_command(
        "create_api_client", "IOM", "partner", "--scopes", "referrals:read", stdout=out, stderr=io.StringIO()
    )
    client = ApiClient.objects.get(name="partner")
    event = AuditEvent.objects.get(action="api_client.created", object_id=str(client.pk))
    assert (event.actor_type, event.actor_label, event.actor_institution) == (
        "system",
        "manage.py create_api_client",
        "IOM",
    )
    token = out.getvalue().strip().splitlines()[-1]
    assert token not in str(event.detail)


# --- webhooks: deleted in the admin as through the API --------------------------------------------------


def test_deleting_a_webhook_in_the_admin_is_recorded_as_the_apis_delete_is(dp, superuser_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint, _secret = n_services.webhook_create(
        institution=dp, url="http://127.0.0.1:9/h", events=["referral.requested"]
    )
    url = f"/admin/notifications/webhookendpoint/{endpoint.pk}/delete/"
    response = superuser_client.post(url, {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    [event] = AuditEvent.objects.filter(action="webhook.deleted")
    assert (event.object_id, event.institutions, event.actor_type) == (str(endpoint.pk), ",DP,", "user")
    assert event.detail == {"via": "django-admin"}


def test_an_admin_of_another_institution_cannot_revoke_through_the_web(iom_admin_client, dp, iom_admin):
    from tests.factories import api_client_row

    client, _token = api_client_row(dp, [Scope.REFERRALS_READ], name="dp-svc")
    assert iom_admin_client.post(f"/manage/api-clients/{client.pk}/revoke/").status_code == 404
    client.refresh_from_db()
    assert client.revoked_at is None
    assert actor_for_user(iom_admin).institution.code == "IOM"


# --- sign-in: the second step --------------------------------------------------------------------------


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_the_session_key_changes_when_the_second_factor_succeeds(iom_supervisor):
    device = confirmed_device(iom_supervisor)
    client = Client()
    response = client.post("/accounts/login/", {"username": iom_supervisor.username, "password": PASSWORD})
    assert response["Location"].startswith(settings.OTP_VERIFY_URL)
    between = client.cookies[settings.SESSION_COOKIE_NAME].value
    # Half signed in: the API says what is missing (not "no institution").
    half = client.get("/api/v1/referrals/")
    assert half.status_code == 403
    assert "authenticator" in half.json()["detail"] and "institution" not in half.json()["detail"]
    done = client.post(settings.OTP_VERIFY_URL, {"otp_token": _code(device)})
    assert done.status_code == 302
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != between
    # The session id seen between the two steps is worth nothing now.
    stale = Client()
    stale.cookies[settings.SESSION_COOKIE_NAME] = between
    assert stale.get("/")["Location"].startswith(settings.LOGIN_URL)
    home = client.get("/")
    assert not (home.status_code == 302 and home["Location"].startswith(settings.LOGIN_URL))


def test_a_second_sign_in_with_the_same_code_is_told_to_wait_for_the_next(iom_supervisor):
    device = confirmed_device(iom_supervisor)
    code = _code(device)
    first = Client()
    first.post("/accounts/login/", {"username": iom_supervisor.username, "password": PASSWORD})
    assert first.post(settings.OTP_VERIFY_URL, {"otp_token": code}).status_code == 302
    second = Client()
    second.post("/accounts/login/", {"username": iom_supervisor.username, "password": PASSWORD})
    again = second.post(settings.OTP_VERIFY_URL, {"otp_token": code})
    assert again.status_code == 200
    html = again.content.decode()
    assert "already used" in html or "ya se usó" in html
    wrong = second.post(settings.OTP_VERIFY_URL, {"otp_token": f"{(int(code) + 1) % 1000000:06d}"})
    assert "already used" not in wrong.content.decode() and "ya se usó" not in wrong.content.decode()


# --- the same write through each door: the same action recorded ----------------------------------------


def _delete_webhook_through(door, endpoint, dp, dp_admin, api_as, superuser_client):
    if door == "api":
        return api_as(dp, [Scope.WEBHOOKS_MANAGE]).delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code
    if door == "web":
        return logged_in_client(dp_admin).post(f"/manage/webhooks/{endpoint.pk}/delete/").status_code
    return superuser_client.post(
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/delete/", {"post": "yes"}
    ).status_code


@pytest.mark.parametrize(("door", "status"), [("api", 204), ("web", 302), ("admin", 302)])
def test_a_webhook_deleted_through_any_door_is_recorded_alike(
    door, status, dp, dp_admin, api_as, superuser_client, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint, _secret = n_services.webhook_create(
        institution=dp, url="http://127.0.0.1:9/h", events=["referral.requested"]
    )
    assert _delete_webhook_through(door, endpoint, dp, dp_admin, api_as, superuser_client) == status
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    [event] = AuditEvent.objects.filter(action="webhook.deleted")
    assert (event.object_id, event.institutions) == (str(endpoint.pk), ",DP,")


@pytest.mark.parametrize("door", ["web", "admin"])
def test_an_api_client_revoked_through_any_door_is_recorded_alike(door, iom, iom_admin, superuser_client):
    from tests.factories import api_client_row

    client, _token = api_client_row(iom, [Scope.REFERRALS_READ], name="iom-svc")
    if door == "web":
        response = logged_in_client(iom_admin).post(f"/manage/api-clients/{client.pk}/revoke/")
    else:
        response = superuser_client.post(
            "/admin/accounts/apiclient/",
            {"action": "revoke", "_selected_action": [str(client.pk)]},
        )
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.revoked_at is not None
    [event] = AuditEvent.objects.filter(action="api_client.revoked")
    assert (event.object_id, event.institutions) == (str(client.pk), ",IOM,")


def test_the_staff_page_asks_the_policy_which_buttons_to_show(iom_admin, iom_admin_client, iom_caseworker):
    page = iom_admin_client.get("/manage/users/").content.decode()
    assert f'action="/manage/users/{iom_caseworker.pk}/active/"' in page
    assert f'action="/manage/users/{iom_admin.pk}/active/"' not in page  # policy.may_deactivate: not oneself
