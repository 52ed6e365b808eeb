"""ETag / If-Match on referrals (contract §3): a version, the same for both sides, changed by each write."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from referrals.models import Note, Referral

from .conftest import API, assert_problem


def _etag(client, referral_id) -> str:
    response = client.get(f"{API}/referrals/{referral_id}/")
    assert response.status_code == 200
    return response["ETag"]


def test_both_sides_see_the_same_strong_etag(iom_api, dp_api, sent_referral):
    referral = sent_referral()
    assert _etag(iom_api, referral.pk) == _etag(dp_api, referral.pk) == f'"{referral.version}"'


def test_every_write_changes_the_etag(iom_api, dp_api, sent_referral):
    referral = sent_referral()
    seen = {_etag(dp_api, referral.pk)}
    writes = [
        (dp_api, "receive", {}),
        (dp_api, "accept", {}),
        (dp_api, "notes", {"body": "Nota"}),
        (iom_api, "notes", {"body": "Respuesta"}),
        (dp_api, "start", {}),
        (dp_api, "hold", {"reason": "Espera"}),
        (dp_api, "resume", {}),
        (dp_api, "complete", {"outcome": "Hecho"}),
        (iom_api, "consent/withdraw", {"reason": "Retiro"}),
    ]
    for client, path, body in writes:
        response = client.post(f"{API}/referrals/{referral.pk}/{path}/", body, format="json")
        assert response.status_code in (200, 201), (path, response.content)
        if path != "notes":
            assert response["ETag"] == _etag(iom_api, referral.pk)
        etag = _etag(iom_api, referral.pk)
        assert etag not in seen, path
        seen.add(etag)


def test_reads_do_not_change_the_etag(iom_api, dp_api, sent_referral):
    referral = sent_referral()
    etag = _etag(dp_api, referral.pk)
    dp_api.get(f"{API}/referrals/{referral.pk}/events/")
    dp_api.get(f"{API}/referrals/{referral.pk}/notes/")
    dp_api.get(f"{API}/referrals/?direction=inbound")
    assert _etag(iom_api, referral.pk) == etag


def test_stale_if_match_on_an_action_is_412_and_changes_nothing(dp_api, sent_referral):
    referral = sent_referral()
    stale = _etag(dp_api, referral.pk)
    assert dp_api.post(f"{API}/referrals/{referral.pk}/receive/", {}, format="json").status_code == 200
    response = dp_api.post(f"{API}/referrals/{referral.pk}/accept/", {}, format="json", HTTP_IF_MATCH=stale)
    assert_problem(response, 412, "precondition-failed")
    assert Referral.objects.get(pk=referral.pk).status == "received"


def test_current_and_star_if_match_succeed(dp_api, sent_referral):
    referral = sent_referral()
    etag = _etag(dp_api, referral.pk)
    ok = dp_api.post(f"{API}/referrals/{referral.pk}/receive/", {}, format="json", HTTP_IF_MATCH=etag)
    assert ok.status_code == 200 and ok["ETag"] != etag
    star = dp_api.post(f"{API}/referrals/{referral.pk}/accept/", {}, format="json", HTTP_IF_MATCH="*")
    assert star.status_code == 200


def test_if_match_on_note_post(iom_api, dp_api, sent_referral):
    referral = sent_referral()
    etag = _etag(iom_api, referral.pk)
    url = f"{API}/referrals/{referral.pk}/notes/"
    assert iom_api.post(url, {"body": "Uno"}, format="json", HTTP_IF_MATCH=etag).status_code == 201
    stale = dp_api.post(url, {"body": "Dos"}, format="json", HTTP_IF_MATCH=etag)
    assert_problem(stale, 412, "precondition-failed")
    assert Note.objects.filter(referral=referral).count() == 1
    assert dp_api.post(url, {"body": "Dos"}, format="json", HTTP_IF_MATCH="*").status_code == 201


def test_if_match_on_consent_withdrawal(iom_api, sent_referral):
    referral = sent_referral()
    url = f"{API}/referrals/{referral.pk}/consent/withdraw/"
    assert_problem(
        iom_api.post(url, {"reason": "r"}, format="json", HTTP_IF_MATCH='"999"'), 412, "precondition-failed"
    )
    assert (
        iom_api.post(
            url, {"reason": "r"}, format="json", HTTP_IF_MATCH=_etag(iom_api, referral.pk)
        ).status_code
        == 200
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_writers_with_the_same_etag_never_both_win(dp, api_as, sent_referral):
    """Two staff answer at once from the same version: exactly one wins, the other gets 409 or 412."""
    for _round in range(3):
        referral = sent_referral()
        etag = f'"{referral.version}"'
        clients = [api_as(dp), api_as(dp)]
        actions = [("accept", {}), ("reject", {"reason": "No procede"})]
        barrier = threading.Barrier(2)
        results = []

        def worker(client, action, body):
            try:
                barrier.wait()
                response = client.post(
                    f"{API}/referrals/{referral.pk}/{action}/", body, format="json", HTTP_IF_MATCH=etag
                )
                results.append(response.status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(c, *a)) for c, a in zip(clients, actions)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results)[0] == 200 and sorted(results)[1] in (409, 412), results
        after = Referral.objects.get(pk=referral.pk)
        assert after.version == referral.version + 1
        assert after.status in ("accepted", "rejected")
