"""The referral lifecycle over the partner API (contract §4): every allowed transition, every refused one,
and the order of the checks (401 → 403 scope → 404 → 403 side → 400 → 409)."""

from __future__ import annotations

import datetime
import uuid

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role, Scope
from referrals.choices import Status
from referrals.lifecycle import TRANSITIONS
from referrals.models import Referral, ReferralEvent

from .helpers import API, assert_problem

S = Status
ALL = set(S.values)
#: The contract's lifecycle table, written out independently of ``referrals.lifecycle``.
CONTRACT = {
    "send": ({S.DRAFT}, S.REQUESTED, "sender", None),
    "receive": ({S.REQUESTED}, S.RECEIVED, "receiver", None),
    "accept": ({S.REQUESTED, S.RECEIVED}, S.ACCEPTED, "receiver", None),
    "reject": ({S.REQUESTED, S.RECEIVED}, S.REJECTED, "receiver", "reason"),
    "start": ({S.ACCEPTED}, S.IN_PROGRESS, "receiver", None),
    "hold": ({S.IN_PROGRESS}, S.ON_HOLD, "receiver", "reason?"),
    "resume": ({S.ON_HOLD}, S.IN_PROGRESS, "receiver", None),
    "complete": ({S.IN_PROGRESS}, S.COMPLETED, "receiver", "outcome"),
    "fail": ({S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD}, S.FAILED, "receiver", "reason"),
    "cancel": (
        {S.DRAFT, S.REQUESTED, S.RECEIVED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD},
        S.CANCELLED,
        "sender",
        "reason",
    ),
    "void": (ALL - {S.ENTERED_IN_ERROR}, S.ENTERED_IN_ERROR, "sender", "reason"),
}
TERMINAL = {S.COMPLETED, S.FAILED, S.REJECTED, S.CANCELLED, S.ENTERED_IN_ERROR}
RESPONSE_TIME = {
    "emergency": datetime.timedelta(hours=24),
    "urgent": datetime.timedelta(hours=72),
    "normal": datetime.timedelta(days=14),
}
ALLOWED = sorted((action, str(s)) for action, (froms, *_rest) in CONTRACT.items() for s in froms)
REFUSED = sorted((action, str(s)) for action, (froms, *_rest) in CONTRACT.items() for s in ALL - froms)


def _url(referral_id, action):
    return f"{API}/referrals/{referral_id}/{action}/"


def _body(action, text="Texto de la acción"):
    """A valid body for ``action``."""
    needs = CONTRACT[action][3]
    if needs == "outcome":
        return {"outcome": text}
    if needs in ("reason", "reason?"):
        return {"reason": text}
    return {}


def _parse(value):
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed


def test_the_transition_table_is_the_contracts():
    assert set(TRANSITIONS) == set(CONTRACT)
    for action, (froms, to, side, needs) in CONTRACT.items():
        t = TRANSITIONS[action]
        assert (set(t.from_statuses), t.to_status, t.side) == (froms, to, side), action
        assert t.needs == (None if needs == "reason?" else needs), action
    assert {s for s in ALL if not any(s in CONTRACT[a][0] for a in CONTRACT if a != "void")} == TERMINAL


@pytest.mark.parametrize("action,from_status", ALLOWED, ids=[f"{a}-from-{s}" for a, s in ALLOWED])
def test_allowed_transition(action, from_status, referral_in, sender_api, receiver_api):
    referral = referral_in(from_status)
    _froms, to_status, side, needs = CONTRACT[action]
    client = sender_api if side == "sender" else receiver_api
    before = sender_api.get(f"{API}/referrals/{referral.pk}/")
    assert before.status_code == 200
    text = f"Texto {action} {from_status} ñ"

    response = client.post(_url(referral.pk, action), _body(action, text), format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == to_status
    assert body["id"] == str(referral.pk)
    assert response["ETag"] == f'"{referral.version + 1}"' != before["ETag"]
    # The same strong ETag for both sides, equal to what a read now returns.
    readers = [sender_api] + ([receiver_api] if from_status != S.DRAFT or action == "send" else [])
    for reader in readers:
        read = reader.get(f"{API}/referrals/{referral.pk}/")
        assert read.status_code == 200
        assert read["ETag"] == response["ETag"]
        assert read.json()["status"] == to_status
    full = sender_api.get(f"{API}/referrals/{referral.pk}/").json()
    if needs in ("reason", "reason?"):
        assert full["status_reason"] == text
    elif action == "resume":
        assert full["status_reason"] in (None, "")
    else:
        assert full["status_reason"] == before.json()["status_reason"]
    if action == "complete":
        assert full["outcome"] == text
    else:
        assert full["outcome"] == before.json()["outcome"]
    assert full["assignee"] is None  # the API never assigns
    stored = Referral.objects.get(pk=referral.pk)
    assert stored.status == to_status and stored.version == referral.version + 1
    last = ReferralEvent.objects.filter(referral=referral).order_by("-sequence", "-at").first()
    assert (last.action, last.from_status, last.to_status) == (action, from_status, to_status)


@pytest.mark.parametrize("urgency", ["emergency", "urgent", "normal"])
def test_send_sets_the_response_deadline_by_urgency(urgency, referral_in, sender_api):
    referral = referral_in("draft", urgency=urgency)
    draft = sender_api.get(f"{API}/referrals/{referral.pk}/").json()
    assert draft["sent_at"] is None and draft["response_due_at"] is None

    body = sender_api.post(_url(referral.pk, "send"), {}, format="json").json()

    sent_at, due = _parse(body["sent_at"]), _parse(body["response_due_at"])
    assert due - sent_at == RESPONSE_TIME[urgency]
    now = datetime.datetime.now(datetime.UTC)
    assert abs(now - sent_at) < datetime.timedelta(minutes=1)


def test_times_are_rfc3339_utc(referral_in, receiver_api):
    referral = referral_in("requested")
    body = receiver_api.get(f"{API}/referrals/{referral.pk}/").json()
    for name in ("sent_at", "response_due_at", "created_at", "updated_at"):
        assert body[name].endswith("Z"), (name, body[name])


def test_hold_without_reason_is_allowed_and_resume_clears_the_reason(referral_in, receiver_api):
    referral = referral_in("in-progress")
    held = receiver_api.post(_url(referral.pk, "hold"), {}, format="json")
    assert held.status_code == 200 and held.json()["status"] == "on-hold"
    assert held.json()["status_reason"] in (None, "")
    held_again = referral_in("on-hold")
    assert receiver_api.get(f"{API}/referrals/{held_again.pk}/").json()["status_reason"] == "ESPERA-SECRETA"
    resumed = receiver_api.post(_url(held_again.pk, "resume"), {}, format="json")
    assert resumed.status_code == 200 and resumed.json()["status"] == "in-progress"
    assert resumed.json()["status_reason"] in (None, "")


@pytest.mark.parametrize("status", sorted(S.values))
def test_refused_transitions_from_each_status(status, referral_in, sender_api, receiver_api):
    """Every action not allowed from ``status``, by the right side with a valid body → 409 (a receiver
    cannot see a draft at all → 404). Nothing changes."""
    referral = referral_in(status)
    failures = []
    for action, (froms, _to, side, _needs) in CONTRACT.items():
        if status in froms:
            continue
        client = sender_api if side == "sender" else receiver_api
        response = client.post(_url(referral.pk, action), _body(action), format="json")
        if status == S.DRAFT and side == "receiver":
            expected, slug = 404, "not-found"
        else:
            expected, slug = 409, "invalid-transition"
        if response.status_code != expected or response.json().get("type") != f"/problems/{slug}":
            failures.append((action, response.status_code, response.content[:200]))
        else:
            assert_problem(response, expected, slug)
    assert failures == []
    after = Referral.objects.get(pk=referral.pk)
    assert (after.status, after.version) == (referral.status, referral.version)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_statuses_allow_only_void(status, referral_in, sender_api, receiver_api):
    referral = referral_in(status)
    for action, (_froms, _to, side, _needs) in CONTRACT.items():
        if action == "void":
            continue
        client = sender_api if side == "sender" else receiver_api
        response = client.post(_url(referral.pk, action), _body(action), format="json")
        assert_problem(response, 409, "invalid-transition")
    if status != S.ENTERED_IN_ERROR:
        voided = sender_api.post(_url(referral.pk, "void"), {"reason": "Duplicado"}, format="json")
        assert voided.status_code == 200 and voided.json()["status"] == "entered-in-error"


#: For each action, a status it is allowed from that the other side can see (send: only drafts).
VISIBLE_FROM = {
    action: sorted(froms - {S.DRAFT})[0] if froms - {S.DRAFT} else S.DRAFT
    for action, (froms, *_rest) in CONTRACT.items()
}


@pytest.mark.parametrize("action", sorted(CONTRACT))
def test_wrong_side_is_403(action, referral_in, sender_api, receiver_api):
    referral = referral_in(VISIBLE_FROM[action])
    side = CONTRACT[action][2]
    other = receiver_api if side == "sender" else sender_api
    response = other.post(_url(referral.pk, action), _body(action), format="json")
    if VISIBLE_FROM[action] == S.DRAFT:
        assert_problem(response, 404, "not-found")  # the receiver never sees drafts
    else:
        assert_problem(response, 403, "permission-denied")
    # ...and also without the required body: the side is checked before the body (403 before 400).
    if CONTRACT[action][3] in ("reason", "outcome") and VISIBLE_FROM[action] != S.DRAFT:
        assert_problem(other.post(_url(referral.pk, action), {}, format="json"), 403, "permission-denied")
    after = Referral.objects.get(pk=referral.pk)
    assert (after.status, after.version) == (referral.status, referral.version)


MISSING = [
    (action, str(sorted(froms)[0]), needs, bad)
    for action, (froms, _to, _side, needs) in CONTRACT.items()
    if needs in ("reason", "outcome")
    for bad in ({}, {needs: ""}, {needs: "   \n\t "}, {needs: None})
]


@pytest.mark.parametrize(
    "action,from_status,field,payload", MISSING, ids=[f"{m[0]}-{i % 4}" for i, m in enumerate(MISSING)]
)
def test_missing_reason_or_outcome_is_400(
    action, from_status, field, payload, referral_in, sender_api, receiver_api
):
    referral = referral_in(from_status)
    client = sender_api if CONTRACT[action][2] == "sender" else receiver_api
    response = client.post(_url(referral.pk, action), payload, format="json")
    assert_problem(response, 400, "validation-error", errors={field})
    assert Referral.objects.get(pk=referral.pk).version == referral.version


def test_reason_is_checked_before_status(referral_in, receiver_api, sender_api):
    """400 before 409: a body error is reported even where the action is not allowed."""
    accepted = referral_in("accepted")
    assert_problem(
        receiver_api.post(_url(accepted.pk, "reject"), {}, format="json"),
        400,
        "validation-error",
        errors={"reason"},
    )
    cancelled = referral_in("cancelled")
    assert_problem(
        sender_api.post(_url(cancelled.pk, "cancel"), {}, format="json"),
        400,
        "validation-error",
        errors={"reason"},
    )


def test_send_without_given_consent_is_409_consent_required(referral_in, sender_api, receiver_api):
    referral = referral_in("draft", consent_given=False)
    response = sender_api.post(_url(referral.pk, "send"), {}, format="json")
    assert_problem(response, 409, "consent-required")
    assert Referral.objects.get(pk=referral.pk).status == S.DRAFT
    assert receiver_api.get(f"{API}/referrals/{referral.pk}/").status_code == 404


@pytest.mark.parametrize(
    "who,expected",
    [
        ("owner_caseworker", 403),
        ("supervisor", 200),
        ("client_with_void", 200),
        ("client_without_void", 403),
        ("client_void_without_write", 403),
        ("admin", 403),
        ("receiving_supervisor", 403),
    ],
)
def test_void_rights(
    who, expected, iom, dp, referral_in, iom_caseworker, iom_supervisor, make_user, api_as, user_api
):
    referral = referral_in("requested")
    clients = {
        "owner_caseworker": lambda: user_api(iom_caseworker),
        "supervisor": lambda: user_api(iom_supervisor),
        "client_with_void": lambda: api_as(
            iom, [Scope.REFERRALS_READ, Scope.REFERRALS_WRITE, Scope.REFERRALS_VOID]
        ),
        "client_without_void": lambda: api_as(iom, [Scope.REFERRALS_READ, Scope.REFERRALS_WRITE]),
        "client_void_without_write": lambda: api_as(iom, [Scope.REFERRALS_READ, Scope.REFERRALS_VOID]),
        "admin": lambda: user_api(make_user(iom, Role.ADMIN)),
        "receiving_supervisor": lambda: user_api(make_user(dp, Role.SUPERVISOR)),
    }
    response = clients[who]().post(_url(referral.pk, "void"), {"reason": "Duplicado"}, format="json")
    if expected == 200:
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "entered-in-error"
        assert response.json()["status_reason"] == "Duplicado"
    else:
        assert_problem(response, 403, "permission-denied")
        assert Referral.objects.get(pk=referral.pk).status == S.REQUESTED


# --- the order of the checks -----------------------------------------------------------------------


@pytest.fixture
def ordering_world(iom, dp, third, referral_in, api_as):
    return {
        "accepted": referral_in("accepted"),
        "iom": api_as(iom),
        "dp": api_as(dp),
        "third": api_as(third),
        "iom_read_only": api_as(iom, [Scope.REFERRALS_READ]),
    }


def test_check_order_401_first(ordering_world):
    referral = ordering_world["accepted"]
    anonymous = APIClient()
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Bearer rcm_" + "x" * 43)
    for client in (anonymous, bad_token):
        # would be 404, 403 side, 400 and 409 for a valid caller: 401 wins
        for target in (uuid.uuid4(), referral.pk):
            assert_problem(
                client.post(_url(target, "send"), {"junk": 1}, format="json"), 401, "not-authenticated"
            )


def test_check_order_scope_before_404(ordering_world):
    read_only = ordering_world["iom_read_only"]
    for target in (uuid.uuid4(), ordering_world["accepted"].pk):
        assert_problem(read_only.post(_url(target, "reject"), {}, format="json"), 403, "permission-denied")


def test_check_order_404_before_side_body_and_status(ordering_world):
    referral = ordering_world["accepted"]
    third = ordering_world["third"]
    for action in CONTRACT:
        for payload in (_body(action), {}):
            assert_problem(third.post(_url(referral.pk, action), payload, format="json"), 404, "not-found")


def test_check_order_side_before_body_and_status(ordering_world):
    referral = ordering_world["accepted"]
    iom = ordering_world["iom"]
    # reject: receiver's, needs a reason, not allowed from accepted — the side wins
    assert_problem(iom.post(_url(referral.pk, "reject"), {}, format="json"), 403, "permission-denied")
    assert_problem(iom.post(_url(referral.pk, "resume"), {}, format="json"), 403, "permission-denied")


def test_check_order_body_before_status(ordering_world):
    referral = ordering_world["accepted"]
    response = ordering_world["dp"].post(_url(referral.pk, "reject"), {"reason": ""}, format="json")
    assert_problem(response, 400, "validation-error", errors={"reason"})
    response = ordering_world["dp"].post(_url(referral.pk, "complete"), {}, format="json")
    assert_problem(response, 400, "validation-error", errors={"outcome"})


def test_check_order_invalid_body_after_visibility_and_side(ordering_world):
    referral = ordering_world["accepted"]
    assert_problem(
        ordering_world["third"].post(_url(referral.pk, "accept"), {"junk": 1}, format="json"),
        404,
        "not-found",
    )
    assert_problem(
        ordering_world["iom"].post(_url(referral.pk, "accept"), {"junk": 1}, format="json"),
        403,
        "permission-denied",
    )


# --- If-Match ----------------------------------------------------------------------------------------


def test_if_match(referral_in, receiver_api):
    referral = referral_in("requested")
    etag = receiver_api.get(f"{API}/referrals/{referral.pk}/")["ETag"]
    stale = receiver_api.post(_url(referral.pk, "receive"), {}, format="json", HTTP_IF_MATCH='"999"')
    assert_problem(stale, 412, "precondition-failed")
    ok = receiver_api.post(_url(referral.pk, "receive"), {}, format="json", HTTP_IF_MATCH=etag)
    assert ok.status_code == 200 and ok["ETag"] != etag
    star = receiver_api.post(_url(referral.pk, "accept"), {}, format="json", HTTP_IF_MATCH="*")
    assert star.status_code == 200 and star.json()["status"] == "accepted"


def test_accept_through_the_ui_assigns_the_caseworker_the_api_does_not(referral_in, dp_actor, receiver_api):
    from referrals import services

    via_ui = referral_in("requested")
    services.referral_transition(actor=dp_actor, referral_id=via_ui.pk, action="accept", assign_to_actor=True)
    assert receiver_api.get(f"{API}/referrals/{via_ui.pk}/").json()["assignee"] == dp_actor.user.username
    via_api = referral_in("requested")
    assert receiver_api.post(_url(via_api.pk, "accept"), {}, format="json").json()["assignee"] is None


def test_the_receiving_supervisor_acts_for_the_receiver(referral_in, dp, make_user, user_api):
    referral = referral_in("requested")
    supervisor = user_api(make_user(dp, Role.SUPERVISOR))
    accepted = supervisor.post(_url(referral.pk, "accept"), {}, format="json")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert_problem(
        supervisor.post(_url(referral.pk, "cancel"), {"reason": "x"}, format="json"), 403, "permission-denied"
    )


def test_a_sending_colleague_without_the_case_cannot_act(referral_in, iom, make_user, user_api):
    referral = referral_in("draft")
    colleague = user_api(make_user(iom, Role.CASEWORKER))
    assert_problem(colleague.post(_url(referral.pk, "send"), {}, format="json"), 404, "not-found")
    assert Referral.objects.get(pk=referral.pk).status == S.DRAFT
