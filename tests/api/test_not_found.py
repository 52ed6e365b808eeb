"""No existence leak (contract §3): an object the caller may not see is a 404 exactly like one that does
not exist, on every detail endpoint; a path id that is not a UUID is a 404 too."""

from __future__ import annotations

import uuid

import pytest

from accounts.choices import Role
from referrals.models import Note, Referral

from .helpers import API, DETAIL_ENDPOINTS, assert_problem, call, endpoints

REFERRAL_ENDPOINTS = [n for n in DETAIL_ENDPOINTS if n != "case-detail"]


def _same_404(client, visible_to_others, ghost):
    """The foreign object's 404 and a missing object's 404: same status, type and bytes."""
    foreign = call(client, visible_to_others)
    missing = call(client, ghost)
    assert_problem(foreign, 404, "not-found")
    assert_problem(missing, 404, "not-found")
    assert foreign.content == missing.content
    assert foreign["Content-Type"] == missing["Content-Type"]
    return foreign


@pytest.fixture
def world(iom, dp, third, referral_in):
    accepted = referral_in("accepted")
    draft = referral_in("draft")
    return {
        "accepted": accepted,
        "draft": draft,
        "real": endpoints(accepted.case_id, accepted.pk),
        "draft_endpoints": endpoints(draft.case_id, draft.pk),
        "ghost": endpoints(uuid.uuid4(), uuid.uuid4()),
    }


@pytest.mark.parametrize("name", DETAIL_ENDPOINTS)
def test_a_third_institution_gets_404_everywhere(name, world, third, api_as, user_api, make_user):
    for client in (api_as(third), user_api(make_user(third, Role.SUPERVISOR))):
        _same_404(client, world["real"][name], world["ghost"][name])
    referral = Referral.objects.get(pk=world["accepted"].pk)
    assert (referral.status, referral.version) == ("accepted", world["accepted"].version)
    assert not Note.objects.filter(referral=referral).exists()


@pytest.mark.parametrize("name", REFERRAL_ENDPOINTS)
def test_the_receiver_gets_404_on_a_draft(name, world, dp, api_as):
    _same_404(api_as(dp), world["draft_endpoints"][name], world["ghost"][name])


def test_the_receiver_gets_404_on_the_senders_case(world, dp, api_as, dp_caseworker, user_api):
    for client in (api_as(dp), user_api(dp_caseworker)):
        _same_404(client, world["real"]["case-detail"], world["ghost"]["case-detail"])


@pytest.mark.parametrize("name", ["case-detail", "referral-detail", "events", "notes-list", "note-create"])
def test_another_caseworker_of_the_same_institution_gets_404(name, world, iom, make_user, user_api):
    """Need-to-know: a colleague who is not on the case cannot tell it exists."""
    colleague = user_api(make_user(iom, Role.CASEWORKER))
    _same_404(colleague, world["real"][name], world["ghost"][name])


NOT_UUIDS = [
    "123",
    "not-a-uuid",
    "00000000-0000-0000-0000-00000000000g",
    "%00",
    "..%2F..%2Fetc",
    "'%20OR%201=1",
]


@pytest.mark.parametrize("bad", NOT_UUIDS)
def test_a_path_id_that_is_not_a_uuid_is_404(bad, world, iom, api_as):
    client = api_as(iom)
    paths = [f"{API}/cases/{bad}/", f"{API}/referrals/{bad}/", f"{API}/referrals/{bad}/events/"]
    paths += [f"{API}/referrals/{bad}/notes/", f"{API}/referrals/{bad}/accept/"]
    paths += [f"{API}/referrals/{bad}/consent/withdraw/"]
    for path in paths:
        assert_problem(client.get(path), 404, "not-found")
        assert_problem(client.post(path, {}, format="json"), 404, "not-found")


def test_a_uuid_with_trailing_garbage_and_unknown_actions_are_404(world, iom, api_as):
    client = api_as(iom)
    pk = world["accepted"].pk
    for path in [f"{API}/referrals/{pk}x/", f"{API}/referrals/{pk}/ready/", f"{API}/referrals/{pk}/delete/"]:
        assert_problem(client.post(path, {}, format="json"), 404, "not-found")
