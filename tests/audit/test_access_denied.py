"""``access.denied``: asking for a case or referral one may not see is recorded, then answered 404 exactly
like a missing one. The caller's own institution reads the same event whether the object exists or not
(no existence oracle through the audit API); the institutions of an existing object see the attempt too."""

from __future__ import annotations

import uuid

import pytest

from accounts.choices import Role
from accounts.models import ApiClient
from audit.models import AuditEvent
from referrals import reads, selectors
from referrals.errors import NotVisible
from tests.api.helpers import API, assert_problem

#: What may differ between two events of the same caller on two different ids.
PER_EVENT = {"id", "sequence", "at", "object_id", "request_id", "hash", "prev_hash"}


def _denied():
    return list(AuditEvent.objects.filter(action="access.denied").order_by("sequence"))


def _codes(event) -> set[str]:
    return {code for code in event.institutions.split(",") if code}


def _latest_client_id():
    """The id of the API client behind the last ``api_as`` client."""
    return str(ApiClient.objects.latest("created_at").pk)


def test_a_visible_referral_records_no_denial(referral_in, dp, api_as):
    accepted = referral_in("accepted")
    assert api_as(dp).get(f"{API}/referrals/{accepted.pk}/").status_code == 200
    assert _denied() == []


def test_a_third_institution_asking_for_a_referral_is_recorded_then_404(referral_in, third, api_as):
    accepted = referral_in("accepted")
    client = api_as(third)
    client_id = _latest_client_id()
    assert_problem(
        client.get(f"{API}/referrals/{accepted.pk}/", HTTP_X_REQUEST_ID="probe-1"), 404, "not-found"
    )
    [event] = _denied()
    assert (event.actor_type, event.actor_id, event.actor_institution) == ("api_client", client_id, "UNHCR")
    assert (event.object_type, event.object_id) == ("referral", str(accepted.pk))
    assert event.outcome == "denied" and event.detail == {"cause": "not-visible"}
    assert event.request_id == "probe-1"
    assert _codes(event) == {"UNHCR", "IOM", "DP"}  # the owner and the receiver see the attempt
    assert event.case_id == str(accepted.case_id)  # and so does the person's access log


def test_every_referral_endpoint_records_the_denial(referral_in, third, api_as):
    accepted = referral_in("accepted")
    client = api_as(third)
    ref = f"{API}/referrals/{accepted.pk}"
    calls = [
        client.get(f"{ref}/events/"),
        client.get(f"{ref}/notes/"),
        client.post(f"{ref}/notes/", {"body": "x"}, format="json"),
        client.post(f"{ref}/accept/", {}, format="json"),
        client.post(f"{ref}/consent/withdraw/", {"reason": "x"}, format="json"),
    ]
    for response in calls:
        assert_problem(response, 404, "not-found")
    events = _denied()
    assert len(events) == len(calls)
    assert {(e.object_id, e.actor_institution) for e in events} == {(str(accepted.pk), "UNHCR")}


def test_a_missing_referral_is_recorded_for_the_caller_only(third, api_as, db):
    ghost = uuid.uuid4()
    assert_problem(api_as(third).get(f"{API}/referrals/{ghost}/"), 404, "not-found")
    [event] = _denied()
    assert (event.object_type, event.object_id, event.case_id) == ("referral", str(ghost), "")
    assert _codes(event) == {"UNHCR"} and event.detail == {"cause": "not-visible"}


def test_the_receiver_asking_for_a_draft_is_not_shown_to_the_receiver_as_a_party(referral_in, dp, api_as):
    draft = referral_in("draft")
    assert_problem(api_as(dp).get(f"{API}/referrals/{draft.pk}/"), 404, "not-found")
    [event] = _denied()
    assert event.actor_institution == "DP" and _codes(event) == {"DP", "IOM"}


def test_a_case_of_another_institution_is_recorded_then_404(referral_in, dp, dp_caseworker, user_api):
    case_id = referral_in("accepted").case_id
    assert_problem(user_api(dp_caseworker).get(f"{API}/cases/{case_id}/"), 404, "not-found")
    [event] = _denied()
    assert (event.actor_type, event.actor_id) == ("user", str(dp_caseworker.pk))
    assert (event.object_type, event.object_id, event.case_id) == ("case", str(case_id), str(case_id))
    assert _codes(event) == {"DP", "IOM"} and event.detail == {"cause": "not-visible"}


def test_a_colleague_not_on_the_case_is_recorded_too(referral_in, iom, make_user, user_api):
    case_id = referral_in("draft").case_id
    colleague = make_user(iom, Role.CASEWORKER, username="iom.other")
    assert_problem(user_api(colleague).get(f"{API}/cases/{case_id}/"), 404, "not-found")
    [event] = _denied()
    assert event.actor_id == str(colleague.pk) and _codes(event) == {"IOM"}


def test_the_callers_institution_cannot_tell_an_existing_object_from_a_missing_one(
    referral_in, third, api_as, auditor
):
    """The 404s are byte-identical, and so are the two events the caller's auditors read."""
    accepted = referral_in("accepted")
    client = api_as(third)
    foreign = client.get(f"{API}/referrals/{accepted.pk}/")
    missing = client.get(f"{API}/referrals/{uuid.uuid4()}/")
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
    seen = auditor(third).get(f"{API}/audit/events/", {"action": "access.denied"}).json()["results"]
    assert len(seen) == 2
    first, second = ({k: v for k, v in e.items() if k not in PER_EVENT} for e in seen)
    assert first == second
    assert first["outcome"] == "denied" and first["detail"] == {"cause": "not-visible"}


def test_the_owner_sees_the_attempt_on_its_object_only(referral_in, iom, third, api_as, auditor):
    accepted = referral_in("accepted")
    client = api_as(third)
    client.get(f"{API}/referrals/{accepted.pk}/")
    client.get(f"{API}/referrals/{uuid.uuid4()}/")
    seen = auditor(iom).get(f"{API}/audit/events/", {"action": "access.denied"}).json()["results"]
    assert [(e["object_id"], e["actor"]["institution"]) for e in seen] == [(str(accepted.pk), "UNHCR")]


def test_the_core_records_for_every_caller_web_pages_included(referral_in, third, service_actor):
    """Every door fetches through the core's reads.fetch_* and turns NotVisible into its own 404: they are
    covered. The selectors themselves never write: they only carry the denial."""
    accepted = referral_in("accepted")
    actor = service_actor(third)
    with pytest.raises(NotVisible) as pure:
        selectors.referral_visible_to(actor, accepted.pk)
    assert pure.value.denial["action"] == "access.denied"
    assert _denied() == []  # selectors do not write
    with pytest.raises(NotVisible):
        reads.fetch_referral(actor, accepted.pk)
    with pytest.raises(NotVisible):
        reads.fetch_case(actor, accepted.case_id)
    with pytest.raises(NotVisible):
        reads.fetch_case(actor, uuid.uuid4())
    events = _denied()
    assert [(e.object_type, e.actor_id) for e in events] == [
        ("referral", str(actor.id)),
        ("case", str(actor.id)),
        ("case", str(actor.id)),
    ]
    assert [_codes(e) for e in events] == [{"UNHCR", "IOM", "DP"}, {"UNHCR", "IOM"}, {"UNHCR"}]


def test_no_personal_data_in_the_event(referral_in, third, api_as):
    accepted = referral_in("accepted")
    api_as(third).get(f"{API}/referrals/{accepted.pk}/")
    [event] = _denied()
    assert event.detail == {"cause": "not-visible"}
    assert event.actor_label.startswith("api:")
