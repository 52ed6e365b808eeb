"""The grants lookup behind every read of a referral (``selectors._held_sql``: written out, on its own in
``_held_codenames`` and riding in the referral's row query in ``referral_visible_to``) gives what
django-guardian's own checker gives, for every kind of holder; and a referral's assignee, no longer joined
into the row's query, still shows through both doors."""

from __future__ import annotations

import pytest
from django.db import transaction
from guardian.core import ObjectPermissionChecker

from accounts.actor import actor_for_user
from accounts.choices import Role
from referrals import selectors, services
from referrals.errors import NotVisible
from tests.web.conftest import logged_in_client

API = "/api/v1"


def _guardian(holder, obj) -> set[str]:
    return set(ObjectPermissionChecker(holder).get_perms(obj))


@pytest.fixture
def received(iom_actor, dp, make_referral):
    return make_referral(iom_actor, dp, path=[(iom_actor, "send")])


@pytest.mark.django_db
def test_user_grants_and_group_grants_are_both_found(
    received, iom_actor, iom_caseworker, dp_actor, dp_caseworker
):
    # The sender's caseworker holds the case through a user grant (the case's owner).
    held = selectors._held_codenames(iom_actor, "case", received.case_id)
    assert held == _guardian(iom_caseworker, received.case) and "view_case" in held
    # The receiver's caseworker holds the referral through the institution's groups.
    held = selectors._held_codenames(dp_actor, "referral", received.pk)
    assert held == _guardian(dp_caseworker, received)
    assert {"view_referral", "view_referral_personal", "change_referral"} <= held


@pytest.mark.django_db
def test_a_partner_system_holds_through_its_service_group(received, service_actor, dp):
    actor = service_actor(dp)
    assert actor.user is None and actor.group_ids
    held = selectors._held_codenames(actor, "referral", received.pk)
    assert {"view_referral", "view_referral_personal", "change_referral"} <= held


@pytest.mark.django_db
def test_nothing_is_held_on_another_object_or_without_any_grant(
    received, iom_actor, dp_actor, make_user, dp, make_referral
):
    other = make_referral(iom_actor, dp)  # a draft: never granted to the receiver
    assert selectors._held_codenames(dp_actor, "referral", other.pk) == set()
    # A caseworker of the sender with no grant on the case (not its owner, no group that holds it).
    stranger = actor_for_user(make_user(iom_actor.institution, Role.CASEWORKER, username="iom.other"))
    assert selectors._held_codenames(stranger, "case", received.case_id) == set()


@pytest.mark.django_db
def test_revoked_grants_are_no_longer_held(received, iom_actor, dp_actor):
    services.consent_withdraw(actor=iom_actor, referral_id=received.pk, reason="La persona lo pidió")
    held = selectors._held_codenames(dp_actor, "referral", received.pk)
    assert "view_referral" in held
    assert not held & {"view_referral_personal", "change_referral"}


@pytest.mark.django_db
def test_the_row_query_carries_the_same_grants(received, iom_actor, dp_actor, dp_caseworker, make_user):
    # The receiver: the grants read with the referral's row are guardian's, and are not left on the row.
    fetched = selectors.referral_visible_to(dp_actor, received.pk)
    assert fetched.__dict__["_held_for"] == ((dp_actor.kind, dp_actor.id), _guardian(dp_caseworker, received))
    assert not {"held_on_case", "held_on_referral"} & fetched.__dict__.keys()
    with transaction.atomic():  # the same, locking the row (the write services' fetch)
        locked = selectors.referral_visible_to(dp_actor, received.pk, for_update=True)
    assert locked.__dict__["_held_for"][1] == _guardian(dp_caseworker, received)
    # The sender sees it through its grant on the case; a caseworker of the sender without one does not,
    # and once consent is withdrawn the receiver holds the referral's metadata only.
    assert selectors.referral_visible_to(iom_actor, received.pk).pk == received.pk
    stranger = actor_for_user(make_user(iom_actor.institution, Role.CASEWORKER, username="iom.other"))
    with pytest.raises(NotVisible):
        selectors.referral_visible_to(stranger, received.pk)
    services.consent_withdraw(actor=iom_actor, referral_id=received.pk, reason="La persona lo pidió")
    held = selectors.referral_visible_to(dp_actor, received.pk).__dict__["_held_for"][1]
    assert "view_referral" in held and not held & {"view_referral_personal", "change_referral"}


@pytest.mark.django_db
def test_an_assigned_referral_shows_its_assignee_through_both_doors(
    received, dp_caseworker, dp_actor, receiver_api
):
    services.referral_take(actor=dp_actor, referral_id=received.pk)
    assert receiver_api.get(f"{API}/referrals/{received.pk}/").json()["assignee"] == "dp.cw"
    page = logged_in_client(dp_caseworker).get(f"/referrals/{received.pk}/")
    assert page.status_code == 200 and "dp.cw" in page.content.decode()


@pytest.mark.django_db
def test_an_unassigned_referral_costs_no_query_for_its_assignee(
    received, receiver_api, django_assert_max_num_queries, queued_audit
):
    receiver_api.get(f"{API}/referrals/{received.pk}/")  # warm the process's caches
    # Token, referral row with the grants; then the audited read (the event's INSERT into the audit queue).
    with django_assert_max_num_queries(3) as captured:
        body = receiver_api.get(f"{API}/referrals/{received.pk}/").json()
    assert body["assignee"] is None
    assert not any("accounts_user" in q["sql"] for q in captured.captured_queries)
