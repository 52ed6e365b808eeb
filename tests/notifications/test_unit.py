"""Embedded-mode unit tests: fan-out, preferences, channels, retries, SSRF, API (SQLite, direct calls)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import requests
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.choices import Role, Scope
from notifications import channels, relay, selectors, services
from notifications.models import (
    Delivery,
    Notification,
    NotificationPreference,
    OutboxMessage,
    WebhookEndpoint,
)
from notifications.ssrf import UnsafeUrl, check_url
from tests.factories import subject_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def embedded(settings):
    """Embedded mode (no broker) even in CI's pass where REDIS_URL is set: the relay delivers in-process."""
    settings.REDIS_URL = None


class FakeResponse:
    def __init__(self, status_code):
        self.status_code = status_code


@pytest.fixture
def posts(monkeypatch):
    """Record webhook POSTs; answer with the queued status codes (then 200)."""
    calls, answers = [], []

    def post(url, *, data=None, headers=None, **kwargs):
        calls.append({"url": url, "body": data, "headers": headers})
        code = answers.pop(0) if answers else 200
        if code is None:
            raise requests.ConnectionError("down")
        return FakeResponse(code)

    monkeypatch.setattr(channels, "http_post", post)
    return calls, answers


@pytest.fixture
def private_ok(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 0


@pytest.fixture
def staff(iom, dp, make_user, iom_caseworker, dp_caseworker):
    return {
        "dp_sup": make_user(
            dp, Role.SUPERVISOR, username="dp.sup", email="dp.sup@example.org", language="en"
        ),
        "dp_admin": make_user(dp, Role.ADMIN, username="dp.admin", email="dp.admin@example.org"),
        "iom_other": make_user(iom, Role.CASEWORKER, username="iom.other", email="iom.other@example.org"),
    }


def test_unread_count_signature_and_anonymous(iom_caseworker):
    assert selectors.unread_count(iom_caseworker) == 0
    assert selectors.unread_count(None) == 0


def test_send_fans_out_to_receiving_intake_and_supervisors(
    iom_actor, dp, dp_caseworker, staff, make_referral
):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    outbox = OutboxMessage.objects.get(referral=referral, event_type="referral.requested")
    relay.sweep()
    outbox.refresh_from_db()
    assert outbox.state == OutboxMessage.State.DONE
    users = set(Notification.objects.filter(outbox=outbox).values_list("user__username", flat=True))
    assert users == {"dp.cw", "dp.sup"}
    assert (
        Delivery.objects.filter(outbox=outbox, state="succeeded").count()
        == Delivery.objects.filter(outbox=outbox).count()
    )
    # the e-mails: by language, reference and status and a link, nothing personal
    by_to = {m.to[0]: m for m in mail.outbox}
    assert "dp.sup@example.org" in by_to
    english = by_to["dp.sup@example.org"]
    assert english.subject == f"New referral {referral.reference}"
    assert str(referral.pk) in english.body
    if dp_caseworker.email:
        assert by_to[dp_caseworker.email].subject.startswith("Nueva remisión")
    for message in mail.outbox:
        for value in ("María", "Pérez", "12.345.678", "6000-1234", "maria@example.org", "Motivo", "Lajas"):
            assert value not in message.subject + message.body
    # running the relay again creates nothing more (idempotent)
    before = (Delivery.objects.count(), len(mail.outbox), Notification.objects.count())
    relay.process_outbox(outbox.pk)
    relay.sweep()
    assert (Delivery.objects.count(), len(mail.outbox), Notification.objects.count()) == before


def test_status_change_tells_the_other_side_only(
    iom_actor, iom_caseworker, dp, dp_actor, staff, make_referral
):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    relay.sweep()
    Notification.objects.all().delete()
    from referrals import services as rs

    rs.referral_transition(actor=dp_actor, referral_id=referral.pk, action="accept")
    relay.sweep()
    users = set(Notification.objects.values_list("user__username", flat=True))
    assert users == {iom_caseworker.username}
    note = Notification.objects.get()
    assert note.data["status"] == "accepted" and note.data["reference"] == referral.reference


def test_email_preference_off_keeps_in_app(iom_actor, dp, staff, make_referral, user_api):
    sup = staff["dp_sup"]
    response = user_api(sup).put(
        "/api/v1/notifications/preferences/", {"email": {"referral.requested": False}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["email"]["referral.requested"] is False
    assert NotificationPreference.objects.get(user=sup).email_enabled is False
    make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    relay.sweep()
    assert Notification.objects.filter(user=sup).count() == 1
    recipients = [address for m in mail.outbox for address in m.to]
    assert recipients and sup.email not in recipients, recipients


def test_preferences_bad_input_is_400(staff, user_api):
    response = user_api(staff["dp_sup"]).put(
        "/api/v1/notifications/preferences/", {"email": {"nope": 1}}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")


def test_in_app_api_list_read_and_read_all(iom_actor, dp, staff, make_referral, user_api, api_as):
    make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    relay.sweep()
    sup = staff["dp_sup"]
    client = user_api(sup)
    body = client.get("/api/v1/notifications/").json()
    assert body["unread"] == 2 and len(body["results"]) == 2
    first = body["results"][0]["id"]
    assert client.post(f"/api/v1/notifications/{first}/read/").status_code == 204
    assert selectors.unread_count(sup) == 1
    assert client.post("/api/v1/notifications/not-a-uuid/read/").status_code == 404
    other = Notification.objects.exclude(user=sup).first()
    assert client.post(f"/api/v1/notifications/{other.pk}/read/").status_code == 404
    assert client.post("/api/v1/notifications/read-all/").json() == {"marked": 1}
    assert selectors.unread_count(sup) == 0
    # API clients have no in-app notifications
    assert api_as(dp).get("/api/v1/notifications/").status_code == 403


def test_webhook_api_create_list_delete_and_errors(dp, api_as, private_ok):
    client = api_as(dp, [Scope.WEBHOOKS_MANAGE])
    response = client.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/hook", "events": ["referral.requested"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "url", "events", "secret"}
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    page = client.get("/api/v1/webhooks/").json()
    assert set(page) == {"results", "next", "previous"}  # the standard list shape
    listed = page["results"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    assert listed[0]["created_at"].endswith("Z")
    assert client.get(f"/api/v1/webhooks/{body['id']}/deliveries/").json() == {"results": []}
    for bad in (
        {"url": "ftp://x", "events": ["referral.requested"]},
        {"url": "http://example.org/h", "events": []},
        {"url": "http://example.org/h", "events": ["referral.viewed"]},
        {"url": "http://example.org/h", "events": ["referral.requested"], "extra": 1},
        {"url": 5, "events": "x"},
    ):
        r = client.post("/api/v1/webhooks/", bad, format="json")
        assert r.status_code == 400, bad
        assert r["Content-Type"].startswith("application/problem+json")
    assert api_as(dp, [Scope.REFERRALS_READ]).get("/api/v1/webhooks/").status_code == 403
    assert client.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
    assert client.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 404
    assert client.get("/api/v1/webhooks/zzz/deliveries/").status_code == 404


def test_webhook_of_another_institution_is_404(dp, iom, api_as, private_ok):
    endpoint, _ = services.webhook_create(
        institution=iom, url="http://127.0.0.1:9/h", events=["referral.requested"]
    )
    client = api_as(dp, [Scope.WEBHOOKS_MANAGE])
    assert client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://localhost/h",
        "http://10.0.0.5/h",
        "http://192.168.1.1/h",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://0.0.0.0/h",
        "http://user:pw@example.org/h",
        "gopher://example.org/",
    ],
)
def test_ssrf_refusal(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeUrl):
        check_url(url)
    with pytest.raises(services.WebhookInvalid):
        services.webhook_create(institution=None, url=url, events=["referral.requested"])


def test_ssrf_checked_again_at_delivery(settings, iom_actor, dp, make_referral, posts):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    services.webhook_create(institution=dp, url="http://127.0.0.1:9/h", events=["referral.requested"])
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    relay.sweep()
    calls, _ = posts
    assert calls == []
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.state == "retrying" and delivery.last_error.startswith("refused")


def test_webhook_signed_body_and_retries_then_success(
    iom_actor, dp, make_referral, posts, private_ok, api_as
):
    endpoint, secret = services.webhook_create(
        institution=dp, url="http://127.0.0.1:9/h", events=["referral.requested", "referral.status_changed"]
    )
    calls, answers = posts
    answers.extend([500, None])
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    for _ in range(3):
        relay.sweep()
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.state == "succeeded" and delivery.attempts == 3
    assert [a.succeeded for a in delivery.attempt_log.all()] == [False, False, True]
    assert len({c["headers"]["webhook-id"] for c in calls}) == 1
    for call in calls:
        payload = Webhook(secret).verify(call["body"], call["headers"])
        assert payload["type"] == "referral.requested"
        assert payload["data"] == {
            "referral_id": str(referral.pk),
            "reference": referral.reference,
            "status": "requested",
        }
        assert set(payload) == {"type", "timestamp", "data"}
    log = api_as(dp, [Scope.WEBHOOKS_MANAGE]).get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").json()
    assert [a["succeeded"] for a in log["results"][0]["attempts"]] == [False, False, True]


def test_dead_after_last_try_then_replay(settings, iom_actor, dp, make_referral, posts, private_ok, api_as):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    endpoint, _ = services.webhook_create(
        institution=dp, url="http://127.0.0.1:9/h", events=["referral.requested"]
    )
    calls, answers = posts
    answers.extend([503, 503])
    make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    for _ in range(4):
        relay.sweep()
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.state == "dead" and delivery.attempts == 2 and len(calls) == 2
    client = api_as(dp, [Scope.WEBHOOKS_MANAGE])
    r = client.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/replay/")
    assert r.status_code == 202
    # A replay is a write: recorded by the notifications service (ids only).
    from audit.models import AuditEvent

    [replayed] = AuditEvent.objects.filter(action="webhook.replayed")
    assert (replayed.actor_type, replayed.actor_institution, replayed.object_id) == (
        "api_client",
        "DP",
        str(endpoint.pk),
    )
    assert replayed.detail == {"delivery": str(delivery.pk)}
    relay.sweep()
    delivery.refresh_from_db()
    assert delivery.state == "succeeded" and len(calls) == 3
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/replay/").status_code == 400
    assert AuditEvent.objects.filter(action="webhook.replayed").count() == 1  # a refused replay: nothing


def test_endpoint_disabled_after_consecutive_failures(
    settings, iom_actor, dp, make_referral, posts, private_ok
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    endpoint, _ = services.webhook_create(
        institution=dp, url="http://127.0.0.1:9/h", events=["referral.requested"]
    )
    calls, answers = posts
    answers.extend([500] * 10)
    for _ in range(4):
        make_referral(iom_actor, dp, path=[(iom_actor, "send")])
        relay.sweep()
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and endpoint.consecutive_failures == 3
    assert len(calls) == 3  # the fourth referral found the endpoint disabled


def test_backoff_grows_exponentially_with_jitter(settings):
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 10
    settings.NOTIFICATIONS_RETRY_MAX_SECONDS = 1000
    for n, top in [(1, 10), (2, 20), (3, 40), (4, 80), (10, 1000)]:
        values = {relay.backoff_seconds(n) for _ in range(20)}
        assert all(top / 2 <= v <= top for v in values)
        assert len(values) > 1  # jitter


def test_webhook_only_to_parties_and_receiver_only_once_sent(
    iom, dp, third, iom_actor, make_referral, posts, private_ok
):
    calls, _ = posts
    for inst in (iom, dp, third):
        services.webhook_create(
            institution=inst,
            url=f"http://127.0.0.1:9/{inst.code}",
            events=["referral.requested", "referral.status_changed"],
        )
    make_referral(iom_actor, dp)  # a draft: nothing
    relay.sweep()
    assert calls == []
    make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    relay.sweep()
    assert [c["url"] for c in calls] == ["http://127.0.0.1:9/DP"]


def test_sla_reminder_once_to_intake_sender_and_supervisors(
    iom_actor, iom_caseworker, dp, staff, make_referral
):
    from referrals.models import Referral

    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")], urgency="emergency")
    relay.sweep()
    Notification.objects.all().delete()
    Referral.objects.filter(pk=referral.pk).update(response_due_at=timezone.now() - timedelta(hours=1))
    assert relay.sla_reminders() == 1
    assert relay.sla_reminders() == 0
    relay.sweep()
    users = set(
        Notification.objects.filter(event_type="referral.overdue").values_list("user__username", flat=True)
    )
    assert users == {"dp.cw", "dp.sup", iom_caseworker.username}


def test_outbox_rows_carry_no_personal_data(iom_actor, dp, dp_actor, make_referral):
    referral = make_referral(
        iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "reject", "Motivo secreto")]
    )
    dump = json.dumps(list(OutboxMessage.objects.filter(referral=referral).values("payload")))
    for value in subject_data().values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in dump
    assert "Motivo" not in dump


def test_dispatch_hands_rows_to_the_registered_tasks_by_name(settings, monkeypatch):
    """The dispatch module never imports the tasks (no cycle): it finds them by name, so the app must have
    registered them at start-up — otherwise every row would wait for the sweep."""
    from celery import current_app

    from notifications import dispatch

    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    handed = []
    for name in ("notifications.tasks.process_outbox", "notifications.tasks.deliver"):
        task = current_app.tasks[name]
        monkeypatch.setattr(
            task, "apply_async", lambda *a, _name=name, **kw: handed.append((_name, kw["args"]))
        )
    dispatch.dispatch_after_commit("o-1")
    dispatch.enqueue_delivery("d-1")
    assert handed == [
        ("notifications.tasks.process_outbox", ["o-1"]),
        ("notifications.tasks.deliver", ["d-1"]),
    ]
