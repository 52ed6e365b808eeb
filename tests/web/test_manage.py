"""Institution admins' pages: staff (create with a role, edit, deactivate, reset the second factor), API
clients (the token shown once, usable, revocable) and webhooks (private URLs refused, secret shown once)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.choices import Role
from accounts.models import ApiClient, User
from audit.models import AuditEvent
from notifications.models import WebhookEndpoint

from .conftest import PASSWORD, confirmed_device, logged_in_client

MANAGE_PAGES = [
    "/manage/users/",
    "/manage/users/new/",
    "/manage/api-clients/",
    "/manage/api-clients/new/",
    "/manage/webhooks/",
    "/manage/webhooks/new/",
]
NEW_PASSWORD = "Tr0pical-Lluvia-2026"
TOKEN = re.compile(r'<code class="secret" id="api-token">(rcm_[A-Za-z0-9_\-]+)</code>')
SECRET = re.compile(r'<code class="secret" id="webhook-secret">(whsec_[A-Za-z0-9+/=]+)</code>')


def html(response) -> str:
    return response.content.decode()


# --- access ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", MANAGE_PAGES)
def test_caseworkers_and_supervisors_get_403(iom_caseworker_client, iom_supervisor_client, url):
    assert iom_caseworker_client.get(url).status_code == 403
    assert iom_supervisor_client.get(url).status_code == 403


@pytest.mark.parametrize("url", MANAGE_PAGES)
def test_manage_pages_are_accessible(iom_admin_client, iom_caseworker, assert_accessible, url):
    assert_accessible(iom_admin_client.get(url))


def test_admin_start_page_is_the_users_list(iom_admin_client):
    response = iom_admin_client.get("/")
    assert response.status_code == 302 and response["Location"] == "/manage/users/"


# --- staff -------------------------------------------------------------------------------------------


def test_admin_creates_a_user_with_a_role(iom, iom_admin, iom_admin_client):
    data = {
        "username": "nueva.supervisora",
        "email": "nueva@iom.example.org",
        "role": "supervisor",
        "language": "es",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    response = iom_admin_client.post("/manage/users/new/", data)
    assert response.status_code == 302 and response["Location"] == "/manage/users/"
    user = User.objects.get(username="nueva.supervisora")
    assert (user.institution, user.role, user.is_active) == (iom, Role.SUPERVISOR, True)
    assert user.check_password(NEW_PASSWORD)
    assert user.groups.filter(name="IOM:supervisors").exists()
    event = AuditEvent.objects.get(action="user.created")
    assert event.actor_label == iom_admin.username and event.object_id == str(user.pk)
    assert NEW_PASSWORD not in str(event.detail)
    page = html(iom_admin_client.get("/manage/users/"))
    assert 'data-user="nueva.supervisora"' in page


def test_user_form_errors(iom_admin_client, iom_caseworker, assert_accessible):
    response = iom_admin_client.post(
        "/manage/users/new/",
        {"username": "iom.cw", "role": "boss", "language": "es", "password1": "x", "password2": "y"},
    )
    assert_accessible(response)
    page = html(response)
    assert page.count('class="error"') >= 3  # taken username, unknown role, passwords
    assert User.objects.filter(username="iom.cw").count() == 1


def test_admin_changes_a_role(iom_admin_client, iom_caseworker):
    response = iom_admin_client.post(
        f"/manage/users/{iom_caseworker.pk}/",
        {
            "email": "cw@iom.example.org",
            "role": "supervisor",
            "language": "en",
            "password1": "",
            "password2": "",
        },
    )
    assert response.status_code == 302
    iom_caseworker.refresh_from_db()
    assert (iom_caseworker.role, iom_caseworker.language) == (Role.SUPERVISOR, "en")
    assert iom_caseworker.check_password(PASSWORD)  # unchanged
    assert AuditEvent.objects.filter(action="user.changed", object_id=str(iom_caseworker.pk)).exists()


def test_admin_deactivates_and_reactivates(iom_admin_client, iom_caseworker):
    victim = logged_in_client(iom_caseworker)
    assert victim.get("/").status_code == 200
    response = iom_admin_client.post(f"/manage/users/{iom_caseworker.pk}/active/", {"active": "0"})
    assert response.status_code == 302
    iom_caseworker.refresh_from_db()
    assert not iom_caseworker.is_active
    assert victim.get("/").status_code == 302  # the open session no longer works
    assert Client().post("/accounts/login/", {"username": "iom.cw", "password": PASSWORD}).status_code == 200
    assert AuditEvent.objects.filter(action="user.deactivated", object_id=str(iom_caseworker.pk)).exists()

    iom_admin_client.post(f"/manage/users/{iom_caseworker.pk}/active/", {"active": "1"})
    iom_caseworker.refresh_from_db()
    assert iom_caseworker.is_active


def test_admin_cannot_deactivate_themselves(iom_admin, iom_admin_client):
    response = iom_admin_client.post(f"/manage/users/{iom_admin.pk}/active/", {"active": "0"}, follow=True)
    iom_admin.refresh_from_db()
    assert iom_admin.is_active
    assert 'data-user="iom.admin"' in html(response)


def test_admin_resets_the_second_factor(iom_admin_client, iom_supervisor):
    confirmed_device(iom_supervisor)
    page = html(iom_admin_client.get("/manage/users/"))
    assert f'action="/manage/users/{iom_supervisor.pk}/reset-2fa/"' in page
    response = iom_admin_client.post(f"/manage/users/{iom_supervisor.pk}/reset-2fa/")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=iom_supervisor).exists()
    event = AuditEvent.objects.get(action="user.second_factor_reset")
    assert event.object_id == str(iom_supervisor.pk) and event.detail == {"devices": 1}
    # At the next sign-in the supervisor enrols a new device.
    client = Client()
    client.post("/accounts/login/", {"username": iom_supervisor.username, "password": PASSWORD})
    assert client.get("/supervision/workload/")["Location"].startswith("/accounts/otp/setup/")


def test_admin_cannot_touch_another_institutions_staff(iom_admin_client, dp_caseworker):
    assert iom_admin_client.get(f"/manage/users/{dp_caseworker.pk}/").status_code == 404
    assert (
        iom_admin_client.post(f"/manage/users/{dp_caseworker.pk}/active/", {"active": "0"}).status_code == 404
    )
    assert iom_admin_client.post(f"/manage/users/{dp_caseworker.pk}/reset-2fa/").status_code == 404
    dp_caseworker.refresh_from_db()
    assert dp_caseworker.is_active
    assert "dp.cw" not in html(iom_admin_client.get("/manage/users/"))


def test_state_changes_are_post_only(iom_admin_client, iom_caseworker):
    assert iom_admin_client.get(f"/manage/users/{iom_caseworker.pk}/active/").status_code == 405
    assert iom_admin_client.get(f"/manage/users/{iom_caseworker.pk}/reset-2fa/").status_code == 405


# --- API clients -------------------------------------------------------------------------------------


def test_api_client_token_is_shown_once_and_works(iom, iom_admin_client, assert_accessible):
    response = iom_admin_client.post(
        "/manage/api-clients/new/", {"name": "Sistema DP (pruebas)", "scopes": ["referrals:read"]}
    )
    assert_accessible(response)
    assert "no-store" in response["Cache-Control"]
    page = html(response)
    token = TOKEN.search(page).group(1)
    assert 'class="warning"' in page
    client = ApiClient.objects.get(name="Sistema DP (pruebas)")
    assert client.institution == iom and client.scopes == ["referrals:read"]
    assert token not in client.token_hash

    # Never again: not on the list, not on the form.
    for url in ("/manage/api-clients/", "/manage/api-clients/new/"):
        again = html(iom_admin_client.get(url))
        assert token not in again and token[12:] not in again
    assert client.token_prefix in html(iom_admin_client.get("/manage/api-clients/"))

    api = Client()
    ok = api.get("/api/v1/institutions/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ok.status_code == 200
    assert AuditEvent.objects.filter(action="api_client.created", object_id=str(client.pk)).exists()

    revoke = iom_admin_client.post(f"/manage/api-clients/{client.pk}/revoke/")
    assert revoke.status_code == 302
    client.refresh_from_db()
    assert client.revoked_at is not None
    assert api.get("/api/v1/institutions/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert AuditEvent.objects.filter(action="api_client.revoked", object_id=str(client.pk)).exists()
    assert f'action="/manage/api-clients/{client.pk}/revoke/"' not in html(
        iom_admin_client.get("/manage/api-clients/")
    )


def test_api_client_form_validation(iom_admin_client, assert_accessible):
    response = iom_admin_client.post(
        "/manage/api-clients/new/", {"name": "<script>", "scopes": [], "expires_on": "2000-01-01"}
    )
    assert_accessible(response)
    assert 'id="api-token"' not in html(response)
    assert not ApiClient.objects.exists()


def test_another_institutions_client_cannot_be_revoked(iom_admin_client, dp, make_token):
    make_token(dp)
    client = ApiClient.objects.get(institution=dp)
    assert iom_admin_client.post(f"/manage/api-clients/{client.pk}/revoke/").status_code == 404
    client.refresh_from_db()
    assert client.revoked_at is None


# --- webhooks ----------------------------------------------------------------------------------------


def test_private_webhook_urls_are_refused(iom_admin_client, settings, assert_accessible):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    for url in ("http://127.0.0.1:8080/hook", "https://10.1.2.3/hook", "https://169.254.169.254/latest"):
        response = iom_admin_client.post(
            "/manage/webhooks/new/", {"url": url, "events": ["referral.requested"]}
        )
        assert_accessible(response)
        assert 'id="webhook-secret"' not in html(response)
        assert 'class="error"' in html(response)
    assert not WebhookEndpoint.objects.exists()


def test_webhook_with_a_public_address_is_created_and_deleted(
    iom, iom_admin_client, settings, assert_accessible
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = iom_admin_client.post(
        "/manage/webhooks/new/",
        {
            "url": "https://93.184.216.34/hooks/rcm",
            "events": ["referral.requested", "referral.status_changed"],
        },
    )
    assert_accessible(response)
    assert "no-store" in response["Cache-Control"]
    secret = SECRET.search(html(response)).group(1)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.institution == iom and endpoint.secret == secret
    page = html(iom_admin_client.get("/manage/webhooks/"))
    assert f'data-webhook="{endpoint.pk}"' in page and secret not in page

    assert iom_admin_client.post(f"/manage/webhooks/{endpoint.pk}/delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_private_webhook_urls_allowed_when_the_setting_says_so(iom_admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    response = iom_admin_client.post(
        "/manage/webhooks/new/", {"url": "http://127.0.0.1:9000/hook", "events": ["referral.note_added"]}
    )
    assert SECRET.search(html(response))
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:9000/hook"


def test_another_institutions_webhook_cannot_be_deleted(iom_admin_client, dp, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    from notifications.services import webhook_create

    endpoint, _secret = webhook_create(
        institution=dp, url="https://dp.example.org/h", events=["referral.requested"]
    )
    assert iom_admin_client.post(f"/manage/webhooks/{endpoint.pk}/delete/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert "dp.example.org" not in html(iom_admin_client.get("/manage/webhooks/"))


def test_admin_cannot_change_their_own_role(iom_admin, iom_admin_client):
    response = iom_admin_client.post(
        f"/manage/users/{iom_admin.pk}/",
        {"email": "", "role": "caseworker", "language": "es", "password1": "", "password2": ""},
    )
    assert response.status_code == 200
    assert 'class="error"' in html(response)
    iom_admin.refresh_from_db()
    assert iom_admin.role == Role.ADMIN
    # Their language, though, they may change.
    response = iom_admin_client.post(
        f"/manage/users/{iom_admin.pk}/",
        {"email": "", "role": "admin", "language": "en", "password1": "", "password2": ""},
    )
    assert response.status_code == 302
    iom_admin.refresh_from_db()
    assert iom_admin.language == "en"


def test_users_list_query_count_does_not_grow_with_the_team(
    iom, make_user, iom_admin_client, django_assert_max_num_queries
):
    for i in range(15):
        make_user(iom, Role.CASEWORKER if i % 2 else Role.SUPERVISOR, username=f"member{i:02d}")
    with django_assert_max_num_queries(15):
        assert iom_admin_client.get("/manage/users/").status_code == 200
