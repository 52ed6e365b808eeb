"""Pinned query counts on list endpoints: a page of 50 costs the same queries as a page of 5 (no N+1),
and exactly the pinned number.

A token costs the same as a session: the client's row, where a session user comes with the request in
these tests but needs its groups (a client's service group is remembered per process, see
``accounts.actor.service_group_id``). A change of a pin must come with its reason in the commit message."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from referrals import services
from tests.builders import referral_body

from .helpers import API, build_referral

#: Queries per list request, by endpoint and caller: (token, session user).
#: referrals/cases: the client's row (token) or the user's groups (session), the one permission-filtered
#: page query. events: + the referral row, which carries the actor's grants on it (one query; two before
#: the grants rode in the row's query).
#: notes: + referral row with the grants, the page, audit of the read.
PINNED = {"referrals": (2, 2), "cases": (2, 2), "events": (3, 3)}
#: notes by side (token): three queries (token, referral with the grants, the page) and the audited read's
#: one INSERT into the audit queue — as in production (the ``queued_audit`` fixture): sealing is the
#: sequencer's work, not the request's. It was 3 statements on SQLite, 2 on PostgreSQL under the head lock.
PINNED_NOTES = {"sender": 4, "receiver": 4}

pytestmark = pytest.mark.usefixtures("queued_audit")


def _count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def _assert_flat(client, url, n_total, pinned):
    sep = "&" if "?" in url else "?"
    client.get(url)  # warm up: the token's last-used time is written at most once a minute
    small, small_body = _count(client, f"{url}{sep}page_size=5")
    large, large_body = _count(client, f"{url}{sep}page_size=50")
    assert len(small_body["results"]) == 5
    assert len(large_body["results"]) == min(50, n_total)
    following, following_body = _count(client, small_body["next"])
    assert len(following_body["results"]) == 5
    assert small == large == following, {"page of 5": small, "page of 50": large, "next page of 5": following}
    assert large == pinned, {"pinned": pinned, "measured": large}
    return large


@pytest.fixture
def many_referrals(referral_in):
    """55 referrals, each with its own case, in a mix of statuses."""
    statuses = ["requested", "accepted", "in-progress", "rejected", "completed"]
    return [referral_in(statuses[i % len(statuses)]) for i in range(55)]


def test_referral_list_is_flat(many_referrals, sender_api, receiver_api, user_api, iom_caseworker):
    """Both directions, by token and by session, with and without filters (one data set: it is costly)."""
    token, session = PINNED["referrals"]
    filters = "status=requested,accepted,in-progress,completed,rejected&ordering=-updated_at"
    for query in ("", "?direction=outbound", "?direction=inbound", f"?{filters}"):
        if query.endswith("inbound"):
            clients = [(receiver_api, token)]
        else:
            clients = [(sender_api, token), (user_api(iom_caseworker), session)]
        if query.startswith("?status"):
            clients.append((receiver_api, token))
        for client, pinned in clients:
            _assert_flat(client, f"{API}/referrals/{query}", 55, pinned)


def test_case_list_is_flat(iom_actor, make_case, sender_api, user_api, iom_caseworker):
    for _ in range(55):
        make_case(iom_actor)
    for client, pinned in zip((sender_api, user_api(iom_caseworker)), PINNED["cases"], strict=True):
        _assert_flat(client, f"{API}/cases/", 55, pinned)


def test_events_are_flat(iom, dp, iom_actor, dp_actor, sender_api, receiver_api, user_api, dp_caseworker):
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="in-progress")
    for i in range(26):
        services.referral_transition(actor=dp_actor, referral_id=referral.pk, action="hold", reason=f"r{i}")
        services.referral_transition(actor=dp_actor, referral_id=referral.pk, action="resume")
    token, session = PINNED["events"]
    for client, pinned in ((sender_api, token), (receiver_api, token), (user_api(dp_caseworker), session)):
        _assert_flat(client, f"{API}/referrals/{referral.pk}/events/", 55, pinned)


def test_notes_are_flat(iom, dp, iom_actor, dp_actor, sender_api, receiver_api):
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="accepted")
    for i in range(55):
        author = iom_actor if i % 2 else dp_actor
        services.note_create(actor=author, referral_id=referral.pk, body=f"Nota {i}")
    for client, side in ((sender_api, "sender"), (receiver_api, "receiver")):
        pinned = PINNED_NOTES[side]
        _assert_flat(client, f"{API}/referrals/{referral.pk}/notes/", 55, pinned)


def test_create_and_send_cost_a_pinned_number_of_queries(iom, dp, sender_api, iom_actor, make_case):
    """Creating a referral and sending it (two requests, with their audit events, grants and outbox row)
    stays within 25 queries (issue 11's target; 55 before the audit batches)."""
    case = make_case(iom_actor)
    body = referral_body(case.pk, urgency="normal", reason="x")
    sender_api.post(f"{API}/referrals/", body, format="json")  # warm the process's caches
    with CaptureQueriesContext(connection) as created:
        response = sender_api.post(f"{API}/referrals/", body, format="json")
    with CaptureQueriesContext(connection) as sent:
        sender_api.post(f"{API}/referrals/{response.json()['id']}/send/", {}, format="json")
    # The test's own transaction turns each service's transaction into a savepoint (2 statements each).
    statements = [q["sql"] for q in created.captured_queries + sent.captured_queries]
    queries = [sql for sql in statements if "SAVEPOINT" not in sql]
    assert len(queries) <= 25, "\n".join(q[:90] for q in queries)
