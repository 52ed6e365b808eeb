"""The Django admin: superusers only (with their second factor); no personal data on any page; the audit
log read-only; secrets (TOTP keys, webhook secrets, token hashes) never shown."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from accounts.actor import actor_for_user
from accounts.choices import Role
from audit.models import AuditEvent
from notifications.services import webhook_create
from referrals import services
from referrals.fields import EncryptedField
from referrals.models import Consent, Note, Subject
from tests.builders import referral_through_services
from tests.factories import UserFactory
from web.presentation import action_label

from .conftest import confirmed_device, logged_in_client

MARK = "Zyxqwert"  # in every encrypted value below: it must appear on no admin page
SUBJECT = {
    "given_name": f"{MARK} Wilfrida",
    "family_name": f"{MARK}-Apellido",
    "date_of_birth": None,
    "sex": "female",
    "nationality": "VEN",
    "languages": ["es"],
    "document_type": "passport",
    "document_number": f"{MARK}998877",
    "phone": "+507 6999-4242",
    "email": f"{MARK.lower()}@example.org",
    "current_location": f"Albergue {MARK}",
    "protection_needs": f"Necesidad {MARK}",
    "is_minor": False,
}
ENCRYPTED_TEXTS = [
    MARK,
    MARK.lower(),
    "6999-4242",
    "998877",
]


@pytest.fixture
def sensitive(iom, dp, iom_caseworker, dp_caseworker, settings):
    """Cases and referrals whose every encrypted field carries MARK, in every state that fills one."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    sender, receiver = actor_for_user(iom_caseworker), actor_for_user(dp_caseworker)
    case = services.case_create(actor=sender, subject=SUBJECT, summary=f"Resumen {MARK}")

    def refer(reason, path=()):
        return referral_through_services(
            sender=sender,
            to=dp,
            case=case,
            path=[(sender, "send"), *path],
            categories=("identity", "contact", "protection"),
            urgency="urgent",
            reason=f"{reason} {MARK}",
            consent_fields={"details": f"Detalles {MARK}"},
            assign=("receive", "accept", "start"),
        )

    done = refer("Motivo", [(receiver, "receive"), (receiver, "accept"), (receiver, "start")])
    services.note_create(actor=receiver, referral_id=done.pk, body=f"Nota {MARK}")
    services.note_create(actor=sender, referral_id=done.pk, body=f"Respuesta {MARK}")
    services.referral_transition(
        actor=receiver, referral_id=done.pk, action="complete", outcome=f"Fin {MARK}"
    )
    rejected = refer("Otro motivo", [(receiver, "reject", f"Rechazo {MARK}")])
    withdrawn = refer("Tercer motivo")
    services.consent_withdraw(actor=sender, referral_id=withdrawn.pk, reason=f"Retiro {MARK}")
    endpoint, secret = webhook_create(
        institution=iom, url="https://hooks.example.org/x", events=["referral.requested"]
    )
    return {"case": case, "referrals": [done, rejected, withdrawn], "webhook_secret": secret}


def admin_urls_of_every_registered_model() -> list[tuple[str, object]]:
    """(changelist URL, ModelAdmin) for every model of the admin site."""
    urls = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls.append((reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"), model_admin))
    return urls


def test_no_admin_lists_shows_or_searches_an_encrypted_field():
    assert Subject not in admin.site._registry
    assert Note not in admin.site._registry
    assert Consent not in admin.site._registry
    for model, model_admin in admin.site._registry.items():
        encrypted = {f.name for f in model._meta.get_fields() if isinstance(f, EncryptedField)}
        named = (
            set(model_admin.list_display) | set(model_admin.readonly_fields) | set(model_admin.list_filter)
        )
        named |= {s.lstrip("=^@") for s in model_admin.search_fields}
        named |= set(model_admin.fields or [])
        for _name, options in model_admin.fieldsets or []:
            named |= set(options.get("fields", []))
        assert not (encrypted & named), (model, encrypted & named)
        if encrypted:
            assert model_admin.fields, f"{model.__name__} must list its fields explicitly"


def test_superuser_sees_every_list_and_page_without_personal_data(sensitive, superuser, superuser_client):
    device = confirmed_device(superuser)
    assert superuser_client.get("/admin/").status_code == 200
    pages = 0
    for changelist, model_admin in admin_urls_of_every_registered_model():
        response = superuser_client.get(changelist)
        assert response.status_code == 200, changelist
        bodies = [response.content.decode()]
        if model_admin.search_fields:  # the encrypted values are not searchable (the page echoes the query)
            searched = superuser_client.get(changelist, {"q": MARK})
            assert searched.status_code == 200
            assert searched.context["cl"].result_count == 0, changelist
        opts = model_admin.model._meta
        for obj in model_admin.model._default_manager.all()[:5]:
            page = superuser_client.get(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            )
            assert page.status_code == 200, (changelist, obj.pk)
            bodies.append(page.content.decode())
        for body in bodies:
            for text in ENCRYPTED_TEXTS:
                assert text not in body, (changelist, text)
            assert sensitive["webhook_secret"] not in body
            assert device.key not in body
        pages += len(bodies)
    assert pages > 30
    # The lists did show the non-personal facts.
    referrals = superuser_client.get("/admin/referrals/referral/").content.decode()
    for referral in sensitive["referrals"]:
        assert referral.reference in referrals
    assert sensitive["case"].reference in superuser_client.get("/admin/referrals/case/").content.decode()


def test_the_audit_log_is_read_only_in_the_admin(sensitive, superuser_client):
    event = AuditEvent.objects.order_by("sequence").first()
    base = "/admin/audit/auditevent/"
    page = superuser_client.get(f"{base}{event.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert superuser_client.get(f"{base}add/").status_code == 403
    assert superuser_client.post(f"{base}add/", {"action": "x.y"}).status_code == 403
    assert superuser_client.post(f"{base}{event.pk}/change/", {"action": "x.y"}).status_code == 403
    assert superuser_client.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert superuser_client.post(
        base, {"action": "delete_selected", "_selected_action": [str(event.pk)], "post": "yes"}
    ).status_code in (200, 302)
    assert AuditEvent.objects.filter(pk=event.pk, action=event.action).exists()


def test_cases_and_referrals_cannot_be_edited_in_the_admin(sensitive, superuser_client):
    case = sensitive["case"]
    assert superuser_client.get("/admin/referrals/case/add/").status_code == 403
    page = superuser_client.get(f"/admin/referrals/case/{case.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert (
        superuser_client.post(f"/admin/referrals/case/{case.pk}/delete/", {"post": "yes"}).status_code == 403
    )


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN])
def test_staff_who_are_not_superusers_are_refused(iom, make_user, web_client, role):
    user = make_user(iom, role, username=f"staff.{role}", is_staff=True)
    client = web_client(user)
    for url in ("/admin/", "/admin/referrals/case/", "/admin/audit/auditevent/", "/admin/login/"):
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)


def test_superuser_without_the_second_factor_goes_to_the_totp_step(superuser):
    confirmed_device(superuser)
    client = Client()
    client.force_login(superuser)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/otp/")


def test_anonymous_visitors_go_to_the_web_sign_in(db):
    for url in ("/admin/", "/admin/login/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_superuser_through_the_real_sign_in(superuser, web_sign_in):
    client = web_sign_in(superuser)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/login/")["Location"] == "/admin/"


def test_superuser_without_an_institution_is_sent_to_the_admin(superuser_client):
    response = superuser_client.get("/supervision/workload/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_api_clients_are_revoked_from_the_admin_with_an_audit_event(iom, make_token, superuser_client):
    from accounts.models import ApiClient

    make_token(iom)
    client = ApiClient.objects.get()
    response = superuser_client.post(
        "/admin/accounts/apiclient/", {"action": "revoke", "_selected_action": [str(client.pk)]}
    )
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.revoked_at is not None
    event = AuditEvent.objects.get(action="api_client.revoked")
    assert event.actor_label == "root.operator" and event.institutions == ",IOM,"


def test_superuser_creates_a_staff_account_in_the_admin(iom, superuser_client):
    from accounts.models import User

    assert superuser_client.get("/admin/accounts/user/add/").status_code == 200
    response = superuser_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "ops.created",
            "institution": iom.pk,
            "role": "supervisor",
            "password1": "Tr0pical-Lluvia-2026",
            "password2": "Tr0pical-Lluvia-2026",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    user = User.objects.get(username="ops.created")
    assert (user.institution, user.role) == (iom, Role.SUPERVISOR)
    assert user.groups.filter(name="IOM:supervisors").exists()
    page = superuser_client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    assert user.password not in page.content.decode()  # only the hash's summary


# --- changes made in the admin are in the audit chain ------------------------------------------------


def _admin_events(action):
    return list(AuditEvent.objects.filter(action=action, detail__via="django-admin").order_by("sequence"))


def test_staff_account_changes_in_the_admin_are_audited_with_field_names_only(
    iom, iom_caseworker, superuser, superuser_client
):
    from django.core.management import call_command

    password = "Tr0pical-Lluvia-2026"
    created = superuser_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "ops.audited",
            "institution": iom.pk,
            "role": "caseworker",
            "password1": password,
            "password2": password,
            "usable_password": "true",
        },
    )
    assert created.status_code == 302, created.content.decode()[-2000:]
    [event] = _admin_events("user.created")
    from accounts.models import User

    user = User.objects.get(username="ops.audited")
    assert (event.object_type, event.object_id) == ("user", str(user.pk))
    assert (event.actor_type, event.actor_id, event.actor_label) == (
        "user",
        str(superuser.pk),
        "root.operator",
    )
    assert event.institutions == ",IOM," and event.request_id

    # A change of role and a grant of superuser: the fields, never their values.
    change = superuser_client.get(f"/admin/accounts/user/{iom_caseworker.pk}/change/")
    assert change.status_code == 200
    form = {
        "username": iom_caseworker.username,
        "institution": iom.pk,
        "role": "supervisor",
        "language": iom_caseworker.language,
        "email": iom_caseworker.email,
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    changed = superuser_client.post(f"/admin/accounts/user/{iom_caseworker.pk}/change/", form)
    assert changed.status_code == 302, changed.content.decode()[-2000:]
    [event] = _admin_events("user.changed")
    assert event.object_id == str(iom_caseworker.pk)
    assert {"role", "is_staff", "is_superuser"} <= set(event.detail["fields"])
    assert "supervisor" not in str(event.detail)

    # A new password set by the operator: "password" is named, the password is nowhere.
    new_password = "Otra-Clave-Segura-2026"
    reset = superuser_client.post(
        f"/admin/accounts/user/{iom_caseworker.pk}/password/",
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )
    assert reset.status_code == 302, reset.content.decode()[-2000:]
    events = _admin_events("user.changed")
    assert len(events) == 2 and events[-1].detail["fields"] == ["password"]
    assert all(password not in str(e.detail) and new_password not in str(e.detail) for e in events)
    assert not AuditEvent.objects.filter(detail__icontains=new_password).exists()
    call_command("verify_audit")  # the admin's events are part of an intact chain


def test_institution_changes_in_the_admin_are_audited(iom, superuser_client):
    from accounts.models import Institution

    added = superuser_client.post(
        "/admin/accounts/institution/add/",
        {"code": "UNICEF", "name": "UNICEF", "require_2fa_for_caseworkers": "on"},
    )
    assert added.status_code == 302, added.content.decode()[-2000:]
    unicef = Institution.objects.get(code="UNICEF")
    [event] = _admin_events("institution.created")
    assert (event.object_type, event.object_id, event.institutions) == (
        "institution",
        str(unicef.pk),
        ",UNICEF,",
    )
    changed = superuser_client.post(
        f"/admin/accounts/institution/{iom.pk}/change/",
        {"name": "OIM Panamá", "require_2fa_for_caseworkers": "on"},
    )
    assert changed.status_code == 302, changed.content.decode()[-2000:]
    [event] = _admin_events("institution.updated")
    assert event.object_id == str(iom.pk) and event.institutions == ",IOM,"
    assert set(event.detail["fields"]) == {"name", "require_2fa_for_caseworkers"}
    # IOM's supervisors read it in their audit log.
    supervisor = UserFactory(institution=iom, role=Role.SUPERVISOR)
    page = logged_in_client(supervisor).get("/audit/")
    assert page.status_code == 200
    assert str(action_label("institution.updated")) in page.content.decode()


def test_removing_a_second_factor_device_in_the_admin_is_audited(iom, iom_caseworker, superuser_client):
    device = confirmed_device(iom_caseworker)
    url = f"/admin/otp_totp/totpdevice/{device.pk}/delete/"
    assert superuser_client.get(url).status_code == 200
    response = superuser_client.post(url, {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    [event] = _admin_events("user.second_factor_reset")
    assert (event.object_type, event.object_id, event.institutions) == (
        "user",
        str(iom_caseworker.pk),
        ",IOM,",
    )
    assert event.detail["device_type"] == "totpdevice"


def test_the_admin_site_is_django_otps_installed_the_supported_way():
    """admin.site is the operators' OTPAdminSite (installed through an AdminConfig, not patched)."""
    from django.contrib import admin
    from django_otp.admin import OTPAdminSite

    from accounts.admin_site import OperatorsAdminSite

    assert isinstance(admin.site, OperatorsAdminSite)
    assert isinstance(admin.site, OTPAdminSite)
    assert "has_permission" not in vars(admin.site)  # a method of the class, not an attribute patched on


def test_offices_are_saved_and_paused_in_the_admin_through_the_services(iom, superuser_client):
    """The office services decide and record (as the operator): an addition, a refused province, a pause."""
    from accounts.models import Office

    refused = superuser_client.post(
        "/admin/accounts/office/add/",
        {
            "institution": iom.pk,
            "code": "DARIEN",
            "name": "Darién",
            "province": "PA-99",
            "services": '["shelter"]',
            "languages": '["es"]',
        },
    )
    assert refused.status_code == 200 and not Office.objects.exists()
    refused = superuser_client.post(
        "/admin/accounts/office/add/",
        {
            "institution": iom.pk,
            "code": "DARIEN",
            "name": "Darién",
            "province": "PA-5",
            "services": '["haircut"]',
            "languages": '["es"]',
        },
    )
    assert refused.status_code == 200 and not Office.objects.exists()
    added = superuser_client.post(
        "/admin/accounts/office/add/",
        {
            "institution": iom.pk,
            "code": "DARIEN",
            "name": "Darién",
            "province": "PA-5",
            "services": '["shelter"]',
            "languages": '["es"]',
        },
    )
    assert added.status_code == 302, added.content.decode()[-2000:]
    office = Office.objects.get(institution=iom, code="DARIEN")
    [event] = _admin_events("office.created")
    assert (event.object_id, event.institutions, event.detail["code"]) == (str(office.pk), ",IOM,", "DARIEN")
    paused = superuser_client.post(
        "/admin/accounts/office/", {"action": "pause", "_selected_action": [office.pk]}
    )
    assert paused.status_code == 302
    office.refresh_from_db()
    assert office.accepting_referrals is False
    assert [e.detail for e in _admin_events("office.paused")] == [
        {"via": "django-admin", "code": "DARIEN", "until": ""}
    ]
