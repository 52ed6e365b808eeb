"""Webhook subscriptions decide where events about referrals go: creating and deleting one is audited."""

import pytest

from audit.models import AuditEvent
from notifications import services

pytestmark = pytest.mark.django_db


def test_webhook_created_and_deleted_through_the_api_leave_audit_events(dp, api_as):
    client = api_as(dp)
    response = client.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/hook", "events": ["referral.requested"]},
        format="json",
    )
    assert response.status_code == 201
    webhook_id = response.json()["id"]
    created = AuditEvent.objects.get(action="webhook.created", object_id=webhook_id)
    assert created.actor_institution == "DP" and created.detail == {"events": ["referral.requested"]}
    assert response.json()["secret"] not in str(created.detail)
    assert client.delete(f"/api/v1/webhooks/{webhook_id}/").status_code == 204
    assert AuditEvent.objects.filter(action="webhook.deleted", object_id=webhook_id).count() == 1


def test_deleting_an_unknown_webhook_records_nothing(dp):
    import uuid

    assert services.webhook_delete(institution=dp, endpoint_id=uuid.uuid4()) is False
    assert not AuditEvent.objects.filter(action="webhook.deleted").exists()


def test_emails_name_the_status_in_the_readers_language(dp, make_user):
    from notifications.channels import render_email
    from notifications.models import OutboxMessage

    outbox = OutboxMessage(event_type="referral.status_changed", payload={"to_status": "completed"})
    es = make_user(dp, language="es")
    en = make_user(dp, language="en")
    assert "Estado: Completada" in render_email(outbox, es)[1]
    assert "Status: Completed" in render_email(outbox, en)[1]
    assert render_email(outbox, es)[0].endswith("estado Completada")
