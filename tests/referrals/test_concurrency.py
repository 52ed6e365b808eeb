"""Concurrent transitions of one referral cannot both win (PostgreSQL: real row locks, real threads)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from referrals.models import Referral, ReferralEvent
from tests.api.helpers import build_referral

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(requests):
    """Run each (client, url, body) in its own thread, released at the same instant."""
    barrier = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def run(index, client, url, body):
        try:
            barrier.wait(timeout=10)
            response = client.post(url, body, format="json")
            results[index] = (response.status_code, response.json())
        except Exception as exc:  # reported below, never swallowed
            results[index] = ("error", repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, *req)) for i, req in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _client(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_accept_and_reject_at_once_exactly_one_wins(iom, dp, iom_actor, dp_actor, make_token):
    dp_token_a, dp_token_b = make_token(dp), make_token(dp)
    referrals = [
        build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested") for _ in range(4)
    ]
    for referral in referrals:
        base = f"/api/v1/referrals/{referral.pk}"
        results = _race(
            [
                (_client(dp_token_a), f"{base}/accept/", {}),
                (_client(dp_token_b), f"{base}/reject/", {"reason": "Fuera del mandato"}),
            ]
        )
        codes = sorted(code for code, _body in results)
        assert codes == [200, 409], results
        winner = next(body for code, body in results if code == 200)
        loser = next(body for code, body in results if code == 409)
        assert loser["type"] == "/problems/invalid-transition"
        stored = Referral.objects.get(pk=referral.pk)
        assert stored.status == winner["status"] in ("accepted", "rejected")
        assert stored.version == referral.version + 1
        answers = ReferralEvent.objects.filter(referral=referral, action__in=["accept", "reject"])
        assert answers.count() == 1


def test_the_same_action_twice_at_once_applies_once(iom, dp, iom_actor, dp_actor, make_token):
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="in-progress")
    tokens = [make_token(dp) for _ in range(3)]
    url = f"/api/v1/referrals/{referral.pk}/complete/"
    results = _race([(_client(t), url, {"outcome": f"Resultado {i}"}) for i, t in enumerate(tokens)])
    assert sorted(code for code, _ in results) == [200, 409, 409], results
    assert ReferralEvent.objects.filter(referral=referral, action="complete").count() == 1
    assert Referral.objects.get(pk=referral.pk).version == referral.version + 1


def test_withdrawal_racing_an_accept_always_ends_revoked(iom, dp, iom_actor, dp_actor, make_token):
    """Whichever wins, the person's withdrawal leaves the receiver without access to personal data."""
    from referrals.models import ReferralGroupObjectPermission, ReferralUserObjectPermission

    iom_token, dp_token = make_token(iom), make_token(dp)
    for _ in range(3):
        referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="received")
        base = f"/api/v1/referrals/{referral.pk}"
        results = _race(
            [
                (
                    _client(iom_token),
                    f"{base}/consent/withdraw/",
                    {"reason": "La persona retiró su consentimiento"},
                ),
                (_client(dp_token), f"{base}/accept/", {}),
            ]
        )
        withdraw, accept = results
        assert withdraw[0] == 200, results
        assert accept[0] in (200, 409), results
        stored = Referral.objects.get(pk=referral.pk)
        assert stored.status == "cancelled"
        assert stored.receiver_access_revoked_at is not None
        kept = set(
            ReferralGroupObjectPermission.objects.filter(content_object=referral).values_list(
                "permission__codename", flat=True
            )
        ) | set(
            ReferralUserObjectPermission.objects.filter(content_object=referral).values_list(
                "permission__codename", flat=True
            )
        )
        assert kept == {"view_referral"}
        seen = _client(dp_token).get(f"{base}/").json()
        assert seen["subject"] is None and seen["reason"] is None
