"""Walk the web UI's URL configuration: every page that shows personal data records a read.

Each route of ``web.urls`` is classified in ``MUST_AUDIT`` (showing it leaves an audit event naming the
reader and the object) or in ``NO_PERSONAL_DATA`` (with the reason). A new page in neither list fails
``test_every_web_route_is_classified``: adding a page forces the decision.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

from accounts.choices import Role
from accounts.models import User
from audit.models import AuditEvent
from tests.web.test_caseworker_pages import act, client_for, create_case, refer

NO_PERSONAL_DATA = {
    "login": "the sign-in form",
    "logout": "POST only, redirects",
    "otp-verify": "the code form",
    "otp-setup": "the enrolment QR code of the user's own device (staff data, not a migrant's)",
    "favicon": "the site's icon",
    "case-create": "the empty form; the POST writes through a service that records case.created",
    "referral-create": "the form; the POST writes through a service that records referral.created",
    "referral-action": "POST only: the service records referral.transitioned",
    "case-link": "POST only: the service records case.linked",
    "case-unlink": "POST only: the service records case.unlinked",
    "referral-note": "POST only: the service records note.created",
    "referral-withdraw-consent": "POST only: the service records consent.withdrawn",
    "notifications": "references and statuses",
    "notifications-read-all": "POST only",
    "notification-open": "POST only, redirects",
    "preferences": "the user's own switches",
    "language-set": "POST only",
    "referral-take": "POST only: the service records referral.assigned",
    "referral-assign": "POST only: the service records referral.assigned",
    "response-times": "counts, durations, references",
    "audit-log": "audit events hold ids and codes only (reading the log is not a read of a person)",
    "manage-users": "staff accounts",
    "manage-user-create": "staff accounts",
    "manage-user-edit": "staff accounts",
    "manage-user-active": "staff accounts",
    "manage-user-reset-2fa": "staff accounts",
    "manage-api-clients": "API clients",
    "manage-api-client-create": "API clients",
    "manage-api-client-revoke": "API clients",
    "manage-webhooks": "webhook subscriptions",
    "manage-webhook-create": "webhook subscriptions",
    "manage-webhook-delete": "webhook subscriptions",
    "referral-route": "POST only: the service records referral.routed",
    "directory": "offices of every institution (no one's personal data)",
    "manage-offices": "the institution's offices",
    "manage-office-create": "the institution's offices (office.created)",
    "manage-office-edit": "the institution's offices (office.changed)",
    "manage-office-pause": "POST only: the service records office.paused",
    "manage-office-resume": "POST only: the service records office.resumed",
}

#: Route name → (method, the audit action its response must leave).
MUST_AUDIT = {
    "case-detail": ("GET", "case.viewed"),
    "case-search": ("POST", "case.searched"),
    "referral-detail": ("GET", "referral.viewed"),
    "referral-preview": ("GET", "referral.viewed"),
    "audit-export": ("GET", "audit.exported"),
    # Lists that name people (issue 12): one list read each, with the ids shown.
    "home": ("GET", "case.list_viewed"),
    "case-list": ("GET", "case.list_viewed"),
    "referral-list": ("GET", "referral.list_viewed"),
    "workload": ("GET", "referral.list_viewed"),
    "referral-print": ("GET", "referral.printed"),
}


def web_routes() -> list[str]:
    resolver = get_resolver()
    names = []
    for pattern in resolver.url_patterns:
        if getattr(pattern, "app_name", None) == "web" or getattr(pattern, "namespace", None) == "web":
            names += [p.name for p in pattern.url_patterns if isinstance(p, URLPattern)]
    return names


def test_every_web_route_is_classified():
    names = web_routes()
    assert names, "the web URL configuration was not found"
    unclassified = [n for n in names if n not in NO_PERSONAL_DATA and n not in MUST_AUDIT]
    assert not unclassified, f"classify these pages in tests/web/test_url_walk.py: {unclassified}"
    stale = [n for n in [*NO_PERSONAL_DATA, *MUST_AUDIT] if n not in names]
    assert not stale, f"these routes no longer exist: {stale}"


@pytest.fixture
def scene(iom, dp, make_user):
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    caseworker = make_user(iom, Role.CASEWORKER, username="walk.cw")
    supervisor = make_user(iom, Role.SUPERVISOR, username="walk.sup")
    client = client_for(caseworker)
    case = create_case(client)
    draft = refer(client, case)
    sent = refer(client, case, categories=("identity", "contact"))
    act(client, sent, "send")
    sup = client_for(supervisor)
    device = TOTPDevice.objects.create(user=supervisor, name="phone", confirmed=True)
    session = sup.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    dp_sup = client_for(make_user(dp, Role.SUPERVISOR, username="walk.dp.sup"))
    dp_device = TOTPDevice.objects.create(
        user=User.objects.get(username="walk.dp.sup"), name="phone", confirmed=True
    )
    session = dp_sup.session
    session[DEVICE_ID_SESSION_KEY] = dp_device.persistent_id
    session.save()
    return {
        "client": client,
        "supervisor": sup,
        "dp_supervisor": dp_sup,
        "case": case,
        "draft": draft,
        "sent": sent,
    }


@pytest.mark.parametrize("name", sorted(MUST_AUDIT))
def test_pages_with_personal_data_record_the_read(scene, name):
    method, action = MUST_AUDIT[name]
    client: Client = scene["client"]
    path = {
        "case-detail": f"/cases/{scene['case'].pk}/",
        "case-search": "/cases/search/",
        "referral-detail": f"/referrals/{scene['sent'].pk}/",
        "referral-preview": f"/referrals/{scene['draft'].pk}/preview/",
        "audit-export": "/audit/export.csv",
        "home": "/",
        "case-list": "/cases/",
        "referral-list": "/referrals/",
        "workload": "/supervision/workload/",
        "referral-print": f"/referrals/{scene['sent'].pk}/print/",
    }[name]
    if name == "audit-export":
        client = scene["supervisor"]
    if name == "workload":
        client = scene["dp_supervisor"]  # the sent referral waits in DP's team queue
    before = AuditEvent.objects.filter(action=action).count()
    if method == "GET":
        response = client.get(path)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    else:
        response = client.post(path, {"document_number": "ZX-998877"})
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action=action).count() == before + 1
    event = AuditEvent.objects.filter(action=action).latest("sequence")
    assert event.actor_label in ("walk.cw", "walk.sup", "walk.dp.sup") and event.request_id
