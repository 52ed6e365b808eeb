"""The authorization matrix (issue 3): every API endpoint × every kind of caller, asserting the exact
status and that no personal data appears in any response where it must not.

Callers: the owner caseworker (session), another caseworker of the same institution, the sender's
supervisor, the receiving intake caseworker, the receiving assignee (accepted through the UI service),
a third institution, receivers whose access was revoked (after reject, cancel, consent withdrawal while
open, consent withdrawal after completion), a token without the scope, and an anonymous caller.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.actor import actor_for_user
from accounts.choices import Role, Scope
from referrals import services
from referrals.choices import SUBJECT_FIELDS
from tests.builders import move, referral_through_services
from tests.factories import subject_json

from .helpers import (
    ACTIONS,
    ALL_SUBJECT_STRINGS,
    API,
    FREE_TEXTS,
    NOTE,
    REASON,
    SECRET_STRINGS_BY_CATEGORY,
    SECRET_SUBJECT,
    SUMMARY,
    assert_problem,
    call,
    endpoints,
    leaked,
    subject_keys,
)

CONSENTED = ("identity", "contact")
RECEIVER_KEYS = subject_keys(CONSENTED)
RECEIVER_MAY_SEE = [s for c in CONSENTED for s in SECRET_STRINGS_BY_CATEGORY[c]] + FREE_TEXTS
SENDER_MAY_SEE = ALL_SUBJECT_STRINGS + FREE_TEXTS + [SUMMARY]
EVERY_SECRET = ALL_SUBJECT_STRINGS + FREE_TEXTS + [SUMMARY]

REVOKED = ("revoked_rejected", "revoked_cancelled", "revoked_withdrawn", "revoked_withdrawn_completed")
ROLES = ("owner", "colleague", "supervisor", "intake", "assignee", "third", "no_scope", "anonymous") + REVOKED
SENDERS = {"owner", "supervisor"}
RECEIVERS = {"intake", "assignee"}

SENDER_ACTIONS = {"send", "cancel", "void"}
#: Where each action's target referral starts (the first status it is allowed from that the receiver sees).
ACTION_START = {
    "send": "draft",
    "receive": "requested",
    "accept": "received",
    "reject": "received",
    "start": "accepted",
    "hold": "in-progress",
    "resume": "on-hold",
    "complete": "in-progress",
    "fail": "accepted",
    "cancel": "accepted",
    "void": "accepted",
}
#: (actor, action, text): how the target referral gets to each start status.
STEPS = {
    "draft": [],
    "requested": [("owner", "send")],
    "received": [("owner", "send"), ("intake", "receive")],
    "accepted": [("owner", "send"), ("assignee", "accept")],
    "in-progress": [("owner", "send"), ("assignee", "accept"), ("assignee", "start")],
    "on-hold": [
        ("owner", "send"),
        ("assignee", "accept"),
        ("assignee", "start"),
        ("assignee", "hold", "ESPERA-SECRETA"),
    ],
    "completed": [
        ("owner", "send"),
        ("assignee", "accept"),
        ("assignee", "start"),
        ("assignee", "complete", "RESULTADO-SECRETO"),
    ],
}


def _row(owner, colleague, supervisor, intake, assignee, third, no_scope, anonymous, revoked):
    row = dict(
        owner=owner,
        colleague=colleague,
        supervisor=supervisor,
        intake=intake,
        assignee=assignee,
        third=third,
        no_scope=no_scope,
        anonymous=anonymous,
    )
    row.update(dict.fromkeys(REVOKED, revoked))
    return row


#                                    owner colleague sup intake assignee third no_scope anon revoked
EXPECTED = {
    "institutions": _row(200, 200, 200, 200, 200, 200, 200, 401, 200),
    "schema": _row(200, 200, 200, 200, 200, 200, 200, 401, 200),
    "case-list": _row(200, 200, 200, 200, 200, 200, 403, 401, 200),
    "case-create": _row(201, 201, 201, 201, 201, 201, 403, 401, 201),
    "case-detail": _row(200, 404, 200, 404, 404, 404, 403, 401, 404),
    "referral-list": _row(200, 200, 200, 200, 200, 200, 403, 401, 200),
    "referral-create": _row(201, 400, 201, 400, 400, 400, 403, 401, 400),
    "referral-detail": _row(200, 404, 200, 200, 200, 404, 403, 401, 200),
    "events": _row(200, 404, 200, 200, 200, 404, 403, 401, 200),
    "notes-list": _row(200, 404, 200, 200, 200, 404, 403, 401, 403),
    "note-create": _row(201, 404, 201, 201, 201, 404, 403, 401, 403),
    "consent-withdraw": _row(200, 404, 200, 403, 403, 404, 403, 401, 403),
}
for _action in ACTIONS:
    if _action in SENDER_ACTIONS:
        # a caseworker may not void; the receiver never sees a draft (send); revoked: wrong side
        owner = 403 if _action == "void" else 200
        receiver = 404 if _action == "send" else 403
        EXPECTED[f"action-{_action}"] = _row(owner, 404, 200, receiver, receiver, 404, 403, 401, 403)
    else:
        # revoked referrals are terminal: the status refuses before the (revoked) access is looked at
        EXPECTED[f"action-{_action}"] = _row(403, 404, 403, 200, 200, 404, 403, 401, 409)
CASES = [(e, r) for e in EXPECTED for r in ROLES]
LISTS = {"case-list", "referral-list"}


class World:
    """The people of the matrix and the referral the endpoint under test is called on."""

    def __init__(self, iom, dp, third, make_user, make_token):
        self.iom, self.dp, self.third_institution = iom, dp, third
        self.users = {
            "owner": make_user(iom, Role.CASEWORKER, username="owner.cw"),
            "colleague": make_user(iom, Role.CASEWORKER, username="colleague.cw"),
            "supervisor": make_user(iom, Role.SUPERVISOR, username="iom.supervisor"),
            "intake": make_user(dp, Role.CASEWORKER, username="dp.intake"),
            "assignee": make_user(dp, Role.CASEWORKER, username="dp.assignee"),
            "third": make_user(third, Role.CASEWORKER, username="third.cw"),
        }
        self.actors = {name: actor_for_user(user) for name, user in self.users.items()}
        self.no_scope_token = make_token(iom, [Scope.AUDIT_READ, Scope.WEBHOOKS_MANAGE])

    def client(self, role):
        if role == "anonymous":
            return APIClient()
        if role == "no_scope":
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.no_scope_token}")
            return client
        if role == "revoked_rejected":
            user = self.users["intake"]  # rejected before anyone was assigned
        elif role in REVOKED:
            user = self.users["assignee"]  # held user-level grants too: all revoked
        else:
            user = self.users[role]
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    def referral(self, status):
        return referral_through_services(
            sender=self.actors["owner"],
            to=self.dp,
            categories=CONSENTED,
            urgency="urgent",
            reason=REASON,
            subject=dict(SECRET_SUBJECT),
            summary=SUMMARY,
            path=self.steps(STEPS[status]),
            assign=("accept",),
        )

    def steps(self, steps):
        return [(self.actors[who], action, *text) for who, action, *text in steps]

    def walk(self, referral, steps):
        move(referral, self.steps(steps), assign=("accept",))

    def target(self, role, endpoint):
        """The referral the call is about: the revoked one for revoked roles."""
        if role == "revoked_rejected":
            referral = self.referral("received")
            self.walk(referral, [("intake", "reject", "MOTIVO-RECHAZO-SECRETO")])
        elif role == "revoked_cancelled":
            referral = self.referral("accepted")
            self.walk(referral, [("owner", "cancel", "CANCELACION-SECRETA")])
        elif role == "revoked_withdrawn":
            referral = self.referral("accepted")
            services.consent_withdraw(
                actor=self.actors["owner"], referral_id=referral.pk, reason="RETIRO-SECRETO"
            )
        elif role == "revoked_withdrawn_completed":
            referral = self.referral("completed")
            services.consent_withdraw(
                actor=self.actors["owner"], referral_id=referral.pk, reason="RETIRO-SECRETO"
            )
        elif endpoint.startswith("action-"):
            referral = self.referral(ACTION_START[endpoint.removeprefix("action-")])
        else:
            referral = self.referral("on-hold")
        if referral.status != "entered-in-error":
            services.note_create(actor=self.actors["owner"], referral_id=referral.pk, body=NOTE)
        referral.refresh_from_db()
        return referral


@pytest.fixture
def world(iom, dp, third, make_user, make_token):
    return World(iom, dp, third, make_user, make_token)


def _allowed_secrets(role, endpoint, status_code):
    if (
        status_code >= 400
        or endpoint in LISTS
        or endpoint in ("events", "institutions", "schema", "case-create")
    ):
        return []
    if role in SENDERS:
        return SENDER_MAY_SEE
    if role in RECEIVERS:
        return RECEIVER_MAY_SEE
    return []


def _check_referral_representation(role, body, referral):
    """The full representation: whole subject for the sender, consented keys for the receiver, metadata
    only for a revoked receiver."""
    assert body["id"] == str(referral.pk) or role in SENDERS  # referral-create answers a new referral
    if role in SENDERS:
        assert set(body["subject"]) == set(SUBJECT_FIELDS)
        assert body["subject"]["given_name"] == SECRET_SUBJECT["given_name"]
        assert body["case"] == str(referral.case_id)
        assert body["reason"] == REASON
    elif role in RECEIVERS and body["status"] not in ("rejected", "cancelled", "entered-in-error"):
        assert body["case"] is None
        assert set(body["subject"]) == RECEIVER_KEYS  # other categories' keys are omitted
        assert body["subject"]["phone"] == SECRET_SUBJECT["phone"]
        assert body["reason"] == REASON
    else:
        assert body["case"] is None
        assert body["subject"] is None
        assert (body["reason"], body["status_reason"], body["outcome"]) == (None, None, None)


@pytest.mark.parametrize("endpoint,role", CASES, ids=[f"{e}-{r}" for e, r in CASES])
def test_authorization_matrix(endpoint, role, world):
    referral = world.target(role, endpoint)
    catalog = endpoints(referral.case_id, referral.pk)
    method, path, body, scope = catalog[endpoint]
    if endpoint == "case-create":
        body = {"subject": subject_json(), "summary": "Otro caso"}  # no secret of the matrix's subject
    expected = EXPECTED[endpoint][role]

    response = call(world.client(role), (method, path, body, scope))

    assert response.status_code == expected, (response.status_code, response.content[:300])
    allowed = _allowed_secrets(role, endpoint, response.status_code)
    assert leaked(response, [s for s in EVERY_SECRET if s not in allowed]) == []
    if expected >= 400:
        slug = {400: "validation-error", 401: "not-authenticated", 403: "permission-denied", 404: "not-found"}
        slug[409] = "invalid-transition"
        problem = assert_problem(response, expected, slug[expected])
        if expected == 400:
            assert set(problem["errors"]) == {"case"}
        return
    if endpoint == "schema":
        assert b"openapi" in response.content[:200]
        return
    data = response.json()
    if endpoint in LISTS:
        ids = [item["id"] for item in data["results"]]
        own = str(referral.case_id if endpoint == "case-list" else referral.pk)
        sees = role in SENDERS if endpoint == "case-list" else role in SENDERS | RECEIVERS | set(REVOKED)
        assert (own in ids) == sees, (role, ids)
        for item in data["results"]:
            assert not {"subject", "reason", "status_reason", "outcome", "summary"} & set(item), item
            if endpoint == "referral-list" and item["id"] == own:
                assert item["case"] == (str(referral.case_id) if role in SENDERS else None)
    elif endpoint == "referral-detail" or endpoint.startswith("action-") or endpoint == "consent-withdraw":
        _check_referral_representation(role, data, referral)
        assert response["ETag"] == f'"{referral.version + (0 if endpoint == "referral-detail" else 1)}"'
    elif endpoint == "referral-create":
        _check_referral_representation(role, data, referral)
        assert data["status"] == "draft"
    elif endpoint == "events":
        actions = [e["action"] for e in data["results"]]
        assert actions[0] == (
            "create" if role in SENDERS else "send"
        )  # the receiver's timeline starts at send
    elif endpoint == "notes-list":
        assert [n["body"] for n in data["results"]] == [NOTE]
        assert data["results"][0]["author_institution"] == "IOM"
    elif endpoint == "note-create":
        assert data["body"] == NOTE
    elif endpoint == "case-detail":
        assert set(data["subject"]) == set(SUBJECT_FIELDS) and data["summary"] == SUMMARY


@pytest.mark.parametrize("role", ["intake", "assignee"])
def test_the_assignee_keeps_access_after_completion_until_withdrawal(role, world):
    referral = world.referral("completed")
    client = world.client(role)
    read = client.get(f"{API}/referrals/{referral.pk}/").json()
    assert read["outcome"] == "RESULTADO-SECRETO" and set(read["subject"]) == RECEIVER_KEYS
    assert client.get(f"{API}/referrals/{referral.pk}/notes/").status_code == 200
    services.consent_withdraw(actor=world.actors["owner"], referral_id=referral.pk, reason="RETIRO-SECRETO")
    after = client.get(f"{API}/referrals/{referral.pk}/")
    assert after.status_code == 200 and after.json()["subject"] is None
    assert leaked(after, EVERY_SECRET) == []
    assert_problem(client.get(f"{API}/referrals/{referral.pk}/notes/"), 403, "permission-denied")
