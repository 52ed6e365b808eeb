"""Idempotency-Key on creating POSTs (contract §3): one object per key, replayed from the database."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import IdempotencyKey
from audit.models import AuditEvent
from plumbing.idempotency import purge_expired
from referrals.models import Case, Note, Referral

from .conftest import API, assert_problem, case_body, referral_body


def _post(client, path, body, key):
    return client.post(f"{API}{path}", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_repeat_of_case_create_returns_the_first_response_and_creates_nothing(iom_api):
    first = _post(iom_api, "/cases/", case_body(), "k-case-1")
    assert first.status_code == 201, first.content
    again = _post(iom_api, "/cases/", case_body(), "k-case-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert Case.objects.count() == 1


def test_equal_json_in_another_key_order_is_the_same_request(iom_api):
    body = case_body()
    first = _post(iom_api, "/cases/", body, "k-order")
    reordered = {"summary": body["summary"], "subject": dict(reversed(list(body["subject"].items())))}
    again = _post(iom_api, "/cases/", reordered, "k-order")
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert Case.objects.count() == 1


def test_repeat_of_referral_create_returns_same_id_status_and_etag(iom_api):
    case_id = iom_api.post(f"{API}/cases/", case_body(), format="json").json()["id"]
    first = _post(iom_api, "/referrals/", referral_body(case_id), "k-ref")
    again = _post(iom_api, "/referrals/", referral_body(case_id), "k-ref")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["ETag"] == first["ETag"]
    assert Referral.objects.count() == 1


def test_repeat_re_renders_current_state_from_the_database(iom_api):
    """Nothing of the response is stored: a repeat after a change shows the object as it is now."""
    case_id = iom_api.post(f"{API}/cases/", case_body(), format="json").json()["id"]
    first = _post(iom_api, "/referrals/", referral_body(case_id), "k-state")
    rid = first.json()["id"]
    assert iom_api.post(f"{API}/referrals/{rid}/send/", {}, format="json").status_code == 200
    again = _post(iom_api, "/referrals/", referral_body(case_id), "k-state")
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (201, rid, "requested")


def test_repeat_of_note_create(iom_api, sent_referral):
    referral = sent_referral()
    first = _post(iom_api, f"/referrals/{referral.pk}/notes/", {"body": "Nota"}, "k-note")
    again = _post(iom_api, f"/referrals/{referral.pk}/notes/", {"body": "Nota"}, "k-note")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Note.objects.count() == 1


def test_same_key_different_body_is_422(iom_api):
    assert _post(iom_api, "/cases/", case_body(), "k-reuse").status_code == 201
    assert_problem(
        _post(iom_api, "/cases/", case_body(given_name="Otra"), "k-reuse"), 422, "idempotency-key-reused"
    )
    assert Case.objects.count() == 1


def test_same_key_on_another_endpoint_is_422(iom_api, sent_referral):
    referral = sent_referral()
    assert _post(iom_api, f"/referrals/{referral.pk}/notes/", {"body": "x"}, "k-path").status_code == 201
    response = _post(iom_api, "/cases/", case_body(), "k-path")
    assert_problem(response, 422, "idempotency-key-reused")


def test_key_in_flight_is_409(iom_api, iom):
    """A claim that is still running (its row says in_flight) answers 409 and creates nothing."""
    from accounts.models import ApiClient
    from plumbing.idempotency import principal_of, request_hash

    client = ApiClient.objects.filter(institution=iom).latest("created_at")
    from accounts.actor import actor_for_api_client

    actor = actor_for_api_client(client)
    body = case_body()
    IdempotencyKey.objects.create(
        principal=principal_of(actor),
        key="k-busy",
        request_hash=request_hash("POST", f"{API}/cases/", body),
        expires_at=timezone.now() + timedelta(hours=24),
    )
    assert_problem(_post(iom_api, "/cases/", body, "k-busy"), 409, "idempotency-key-in-flight")
    assert Case.objects.count() == 0


def test_keys_are_scoped_to_the_caller(iom, api_as):
    one, other = api_as(iom), api_as(iom)
    a = _post(one, "/cases/", case_body(), "shared-key")
    b = _post(other, "/cases/", case_body(), "shared-key")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert Case.objects.count() == 2


def test_users_keys_are_scoped_to_the_user(iom, make_user, user_api):
    first = _post(user_api(make_user(iom)), "/cases/", case_body(), "user-key")
    second = _post(user_api(make_user(iom)), "/cases/", case_body(), "user-key")
    assert first.json()["id"] != second.json()["id"]
    assert set(IdempotencyKey.objects.values_list("principal", flat=True)) == {
        f"user:{u}" for u in Case.objects.values_list("owner_id", flat=True)
    }


def test_a_failed_request_is_not_remembered(iom_api):
    bad = case_body()
    bad["subject"]["unknown"] = 1
    assert_problem(_post(iom_api, "/cases/", bad, "k-retry"), 400, "validation-error")
    assert not IdempotencyKey.objects.exists()
    assert _post(iom_api, "/cases/", case_body(), "k-retry").status_code == 201


def test_expired_keys_are_reusable_and_purged(iom_api):
    first = _post(iom_api, "/cases/", case_body(), "k-old")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = _post(iom_api, "/cases/", case_body(), "k-old")
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert purge_expired() == 1
    assert not IdempotencyKey.objects.exists()


def test_keys_are_kept_24_hours(iom_api):
    _post(iom_api, "/cases/", case_body(), "k-ttl")
    row = IdempotencyKey.objects.get()
    assert timedelta(hours=23, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=24)


def test_abandoned_claim_of_a_dead_request_is_taken_over(iom_api):
    """A claim left in flight by a crashed process (its work rolled back) does not block forever."""
    _post(iom_api, "/cases/", case_body(), "k-dead")
    Case.objects.all().delete()  # as if the work had rolled back
    IdempotencyKey.objects.update(state="in_flight", created_at=timezone.now() - timedelta(minutes=10))
    assert _post(iom_api, "/cases/", case_body(), "k-dead").status_code == 201
    assert Case.objects.count() == 1


@pytest.mark.parametrize("key", ["", "a" * 256, "clé", "with space"])
def test_malformed_keys_are_400(iom_api, key):
    assert_problem(_post(iom_api, "/cases/", case_body(), key), 400, "validation-error")
    assert Case.objects.count() == 0


def test_nothing_personal_is_stored_with_the_key(iom_api):
    response = _post(iom_api, "/cases/", case_body(), "k-clear")
    row = IdempotencyKey.objects.values().get()
    stored = " ".join(str(v) for v in row.values())
    for secret in ("María", "Pérez", "V12345678", "6000-1234", "maria@example.org", "Resumen"):
        assert secret not in stored
    assert row["object_id"] == uuid.UUID(response.json()["id"]) and row["status_code"] == 201


def test_a_replay_is_audited_as_a_read(iom_api):
    _post(iom_api, "/cases/", case_body(), "k-audit")
    before = AuditEvent.objects.filter(action="case.viewed").count()
    _post(iom_api, "/cases/", case_body(), "k-audit")
    event = AuditEvent.objects.filter(action="case.viewed").latest("sequence")
    assert AuditEvent.objects.filter(action="case.viewed").count() == before + 1
    assert event.detail == {"idempotent_replay": True}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["cases", "referrals", "notes"])
def test_concurrent_duplicates_create_exactly_one_object(path, iom, dp, api_as, sent_referral):
    """Eight threads, each with its own connection, race the same key: one object, answers 201 or 409."""
    setup = api_as(iom)
    if path == "cases":
        url, body, model = f"{API}/cases/", case_body(), Case
    elif path == "referrals":
        case_id = setup.post(f"{API}/cases/", case_body(), format="json").json()["id"]
        url, body, model = f"{API}/referrals/", referral_body(case_id), Referral
    else:
        referral = sent_referral()
        url, body, model = f"{API}/referrals/{referral.pk}/notes/", {"body": "Nota"}, Note
    before = model.objects.count()
    barrier = threading.Barrier(8)
    results = []

    def worker():
        try:
            barrier.wait()
            response = setup.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="race-key")
            results.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert model.objects.count() == before + 1
    codes = [code for code, _id in results]
    assert set(codes) <= {201, 409} and 201 in codes, results
    assert len({object_id for code, object_id in results if code == 201}) == 1
