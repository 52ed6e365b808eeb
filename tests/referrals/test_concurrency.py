"""Concurrent transitions of one referral cannot both win (PostgreSQL: real row locks, real threads)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from referrals import references, services
from referrals.models import Referral, ReferralEvent
from tests.api.helpers import build_referral
from tests.builders import referral_through_services

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


def test_sixteen_clients_creating_at_once_get_distinct_consecutive_references(iom, dp, iom_actor):
    """References come from the counter's own short transaction: all distinct, none lost when all commit."""
    case = services.case_create(actor=iom_actor, subject={"given_name": "Ana", "family_name": "Ruiz"})
    barrier = threading.Barrier(16)
    made, errors = [], []

    def create():
        try:
            barrier.wait(timeout=10)
            for _ in range(3):
                made.append(referral_through_services(sender=iom_actor, to=dp, case=case).reference)
        except Exception as exc:  # reported below, never swallowed
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(made) == 48
    numbers = sorted(int(r.rsplit("-", 1)[1]) for r in made)
    assert numbers == list(range(1, 49))  # distinct, and no gap when every create commits
    assert Referral.objects.filter(from_institution=iom).count() == 48


def test_the_counter_row_is_not_held_until_the_create_commits(iom):
    """A create that took its number and has not committed yet does not keep the next one from taking its."""
    took, release = threading.Event(), threading.Event()
    first = {}

    def slow_create():
        try:
            with transaction.atomic():
                first["reference"] = references.next_reference(iom, "ref")
                took.set()
                release.wait(timeout=30)  # the rest of a long create, its transaction still open
        finally:
            connection.close()

    def next_create():
        try:
            first["next"] = references.next_reference(iom, "ref")
        finally:
            connection.close()

    slow = threading.Thread(target=slow_create)
    slow.start()
    assert took.wait(timeout=30)
    other = threading.Thread(target=next_create)
    other.start()
    other.join(timeout=5)  # with the row held until commit, this waited for the slow create
    finished_while_open = not other.is_alive()
    release.set()
    slow.join(timeout=30)
    other.join(timeout=30)
    assert finished_while_open
    assert int(first["next"].rsplit("-", 1)[1]) == int(first["reference"].rsplit("-", 1)[1]) + 1
