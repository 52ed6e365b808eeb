"""``GET /api/v1/statistics/referrals/`` (contract §6.4, protected as §7.5) on the built data set of
``conftest.py``."""

from __future__ import annotations

import datetime
import json

import pytest

from audit.models import AuditEvent
from tests.api.helpers import assert_problem

from .conftest import DOCUMENTS, PERSON_NAMES, published

URL = "/api/v1/statistics/referrals/"
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def get(client, by, **params):
    return client.get(URL, {**MARCH, "by": by, **params})


def counts(response) -> dict:
    """``{key values: count}`` (a single dimension's value alone)."""
    assert response.status_code == 200, response.content[:400]
    out = {}
    for row in response.json()["rows"]:
        values = tuple(row["key"].values())
        out[values[0] if len(values) == 1 else values] = row["count"]
        assert row["suppressed"] is False
    return out


def groups(dataset):
    """The data set's referrals by what they are (see ``conftest.py``)."""
    accepted, minors, inbound = dataset["accepted"], dataset["minors"], dataset["inbound"]
    return accepted, minors, inbound, accepted + minors + inbound


# --- published counts ----------------------------------------------------------------------------------


def test_the_response_shape(dataset, stats_api, iom, min_cell_2):
    accepted, minors, inbound, everything = groups(dataset)
    response = get(stats_api(iom), "status")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    expected = published({"accepted": accepted, "requested": minors + inbound}, 2)
    assert body == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "by": ["status"],
        "min_cell": 2,
        "protection": "cell_key",
        "max_adjustment": 2,
        "total": published({"total": everything}, 2)["total"],
        "rows": [
            {
                "key": {"status": status},
                "count": count,
                "suppressed": False,
                # 6 answered in 1…6 hours: the median 3.5 in whole hours; 3 requested: none answered.
                "median_hours_to_answer": 4 if status == "accepted" else None,
            }
            for status, count in expected.items()
        ],
    }


def test_counts_for_the_sender(dataset, stats_api, iom, min_cell_2):
    accepted, minors, inbound, everything = groups(dataset)
    client = stats_api(iom)
    assert counts(get(client, "sex")) == published({"female": accepted + inbound, "male": minors}, 2)
    assert counts(get(client, "nationality")) == published({"COL": minors, "VEN": accepted + inbound}, 2)
    assert counts(get(client, "is_minor")) == published({False: accepted + inbound, True: minors}, 2)
    assert counts(get(client, "month")) == published({"2026-03": everything}, 2)
    assert counts(get(client, "to_institution")) == published({"DP": accepted + minors, "IOM": inbound}, 2)
    assert counts(get(client, "service")) == published(
        {"child_protection": minors, "health": inbound, "legal_assistance": accepted, "protection": accepted},
        2,
    )
    assert counts(get(client, "age_band")) == published(
        {"12-17": minors, "30-59": accepted, "60+": inbound}, 2
    )


def test_the_receiver_counts_what_consent_did_not_give_as_unknown(dataset, stats_api, dp, min_cell_2):
    accepted, minors, inbound, _ = groups(dataset)
    client = stats_api(dp)
    assert counts(get(client, "sex")) == published({"female": accepted + inbound, "unknown": minors}, 2)
    assert counts(get(client, "nationality")) == published({"VEN": accepted + inbound, "unknown": minors}, 2)
    assert counts(get(client, "is_minor")) == published({False: accepted + inbound, "unknown": minors}, 2)
    assert counts(get(client, "age_band")) == published(
        {"30-59": accepted, "60+": inbound, "unknown": minors}, 2
    )
    # Dimensions that are not the person's stay known.
    assert counts(get(client, "urgency")) == published(
        {"emergency": inbound, "normal": accepted, "urgent": minors}, 2
    )


def test_a_consent_withdrawal_makes_the_person_unknown_to_the_receiver(
    dataset, stats_api, dp, iom_actor, min_cell_2
):
    from referrals import services

    accepted, minors, inbound, _ = groups(dataset)
    services.consent_withdraw(actor=iom_actor, referral_id=accepted[0].pk, reason="Retiro")
    assert counts(get(stats_api(dp), "sex")) == published(
        {"female": accepted[1:] + inbound, "unknown": [accepted[0], *minors]}, 2
    )


def test_a_rejection_makes_the_person_unknown_to_the_receiver(
    stats_api, iom, dp, iom_actor, dp_actor, refer, min_cell_2
):
    """Issue 22 item 2: DP rejects a referral whose consent gave identity; its detail then shows no
    subject, and its statistics must not show the person's nationality or sex either."""

    from .conftest import MARCH as march
    from .conftest import sent_at

    mongolian = {
        "sex": "female",
        "nationality": "MNG",
        "date_of_birth": datetime.date(1991, 2, 3),
        "is_minor": False,
    }
    referrals = []
    for _ in range(7):  # seven, so that every cell is published whatever the keys
        referral = refer(iom_actor, dp_actor, dp, subject=mongolian, path=("send", "reject"))
        sent_at(referral, march)
        referrals.append(referral)
    body = get(stats_api(dp), "status,nationality").json()
    assert [row["key"] for row in body["rows"]] == [{"status": "rejected", "nationality": "unknown"}]
    body = get(stats_api(dp), "nationality,sex").json()
    assert [row["key"] for row in body["rows"]] == [{"nationality": "unknown", "sex": "unknown"}]
    # The sender still reads its own referrals' people.
    body = get(stats_api(iom), "nationality,sex").json()
    assert [row["key"] for row in body["rows"]] == [{"nationality": "MNG", "sex": "female"}]


def test_two_dimensions(dataset, stats_api, iom, min_cell_2):
    accepted, minors, inbound, everything = groups(dataset)
    body = get(stats_api(iom), "from_institution,sex").json()
    assert body["by"] == ["from_institution", "sex"]
    expected = published({("DP", "female"): inbound, ("IOM", "female"): accepted, ("IOM", "male"): minors}, 2)
    assert counts(get(stats_api(iom), "from_institution,sex")) == expected
    medians = {
        (r["key"]["from_institution"], r["key"]["sex"]): r["median_hours_to_answer"] for r in body["rows"]
    }
    assert medians.get(("IOM", "female")) == 4
    assert medians.get(("IOM", "male")) is None
    assert body["total"] == published({"total": everything}, 2)["total"]


def test_default_min_cell_is_five(dataset, stats_api, iom):
    accepted, minors, inbound, everything = groups(dataset)
    body = get(stats_api(iom), "sex").json()
    assert body["min_cell"] == 5
    assert counts(get(stats_api(iom), "sex")) == published({"female": accepted + inbound, "male": minors}, 5)
    # 2 boys: never published between 1 and 4 — with min_cell 5 a true 2 is published as 0 (left out).
    assert "male" not in counts(get(stats_api(iom), "sex"))
    assert not any(1 <= row["count"] <= 4 for row in body["rows"])
    service = {r["key"]["service"]: r for r in get(stats_api(iom), "service").json()["rows"]}
    legal = published({"legal_assistance": accepted}, 5)["legal_assistance"]
    assert service["legal_assistance"] == {
        "key": {"service": "legal_assistance"},
        "count": legal,
        "suppressed": False,
        "median_hours_to_answer": 4,  # 6 answered of 6 (true count 6 ≥ 5)
    }
    assert "health" not in service and "child_protection" not in service


def test_the_same_referrals_give_the_same_count_whatever_the_query(dataset, stats_api, iom, min_cell_2):
    """A cell's published count depends on its referrals only: the month of March, the total of March
    and the March total asked for by another dimension agree."""
    client = stats_api(iom)
    total = get(client, "sex").json()["total"]
    assert get(client, "month").json()["total"] == total
    assert counts(get(client, "month")) == {"2026-03": total}
    assert counts(get(client, "month", **{"from": "2026-02-15", "to": "2026-03-31"})) == {"2026-03": total}


def test_period_bounds_are_inclusive_utc_dates(dataset, stats_api, iom, min_cell_2):
    accepted, minors, inbound, everything = groups(dataset)
    client = stats_api(iom)
    first_day = [minors[0]]
    assert counts(get(client, "month", **{"from": "2026-03-01", "to": "2026-03-01"})) == published(
        {"2026-03": first_day}, 2
    )
    april = dataset["not_counted"][2]
    assert counts(get(client, "month", **{"from": "2026-03-31", "to": "2026-04-01"})) == published(
        {"2026-03": inbound, "2026-04": [april]}, 2
    )
    year = get(client, "month", **{"from": "2026-01-01", "to": "2026-12-31"}).json()["total"]
    assert year == published({"total": [*everything, april]}, 2)["total"]


# --- institution boundaries ------------------------------------------------------------------------


def test_an_institution_without_referrals_sees_nothing(dataset, stats_api, third, min_cell_2):
    body = get(stats_api(third), "from_institution").json()
    assert body["total"] == 0 and body["rows"] == []


def test_only_the_referrals_an_institution_sent_or_received(
    dataset, stats_api, dp, third, refer, make_user, min_cell_2
):
    from accounts.actor import actor_for_user

    from .conftest import MARCH as march
    from .conftest import sent_at

    accepted, minors, inbound, _ = groups(dataset)
    third_actor = actor_for_user(make_user(third, username="third.cw"))
    theirs = []
    for _ in range(3):
        referral = refer(third_actor, None, dp, subject={"sex": "other"})
        sent_at(referral, march)
        theirs.append(referral)
    assert counts(get(stats_api(dp), "from_institution")) == published(
        {"DP": inbound, "IOM": accepted + minors, "UNHCR": theirs}, 2
    )
    assert counts(get(stats_api(third), "to_institution")) == published({"DP": theirs}, 2)
    # IOM does not see UNHCR's referrals to DP.
    assert "UNHCR" not in json.dumps(
        get(stats_api(dp.__class__.objects.get(code="IOM")), "from_institution").json()
    )


# --- scopes --------------------------------------------------------------------------------------------


def test_no_token_is_401(db, client):
    response = client.get(URL, {**MARCH, "by": "month"})
    assert_problem(response, 401, "not-authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_statistics_read_is_403(iom, api_as):
    client = api_as(iom, ["referrals:read", "referrals:write", "audit:read"])
    assert_problem(get(client, "month"), 403, "permission-denied")


def test_a_caseworker_session_is_403_and_a_supervisor_session_is_served(
    iom_caseworker, iom_supervisor, user_api
):
    """Contract §7.1: supervisors (and admins) hold ``statistics:read``; caseworkers do not."""
    assert_problem(get(user_api(iom_caseworker), "month"), 403, "permission-denied")
    assert get(user_api(iom_supervisor), "month").status_code == 200


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-30", "to": "2026-03-31", "by": "month"}, "from"),
        ({"from": "yesterday", "to": "2026-03-31", "by": "month"}, "from"),
        ({"from": "2026-03-01", "to": "2026-13-01", "by": "month"}, "to"),
        ({"from": "2026-04-01", "to": "2026-03-31", "by": "month"}, "to"),
        ({"from": "2020-01-01", "to": "2026-03-31", "by": "month"}, "to"),
        ({"from": "2026-03-01", "to": "2026-03-31", "by": "religion"}, "by"),
        ({"from": "2026-03-01", "to": "2026-03-31", "by": "sex,sex"}, "by"),
        ({"from": "2026-03-01", "to": "2026-03-31", "by": "month,sex,service"}, "by"),
        ({"from": "2026-03-01", "to": "2026-03-31", "by": "month", "direction": "inbound"}, "direction"),
        ({"from": "2026-03-01", "to": "2026-03-31"}, "by"),
        ({"from": "2026-03-01", "to": "2026-03-31", "by": "month\x00"}, "by"),
    ],
)
def test_bad_input_is_400_problem_json(iom, stats_api, params, field):
    response = stats_api(iom).get(URL, params)
    body = assert_problem(response, 400, "validation-error")
    assert field in body["errors"]
    assert not AuditEvent.objects.filter(action="statistics.viewed").exists()


def test_a_repeated_parameter_is_400(iom, stats_api):
    response = stats_api(iom).get(URL + "?from=2026-03-01&to=2026-03-31&by=month&by=sex")
    assert "by" in assert_problem(response, 400, "validation-error")["errors"]


# --- no personal data; the read is audited --------------------------------------------------------------


@pytest.mark.parametrize(
    "by", ["sex", "nationality", "age_band", "is_minor", "month,age_band", "service,sex"]
)
def test_no_personal_data_in_any_output(dataset, stats_api, iom, dp, by, min_cell_2):
    for institution in (iom, dp):
        text = get(stats_api(institution), by).content.decode()
        for secret in [*PERSON_NAMES, *DOCUMENTS, "1990-05-01", "2012-01-01", "1950-01-01", "secret"]:
            assert secret not in text
    for event in AuditEvent.objects.filter(action="statistics.viewed"):
        detail = json.dumps(event.detail)
        assert not any(secret in detail for secret in [*PERSON_NAMES, *DOCUMENTS])


def test_the_read_records_statistics_viewed(dataset, stats_api, iom):
    get(stats_api(iom), "month,sex")
    event = AuditEvent.objects.get(action="statistics.viewed")
    assert event.actor_institution == "IOM"
    assert event.object_type == "statistics"
    assert event.detail == {"from": "2026-03-01", "to": "2026-03-31", "by": ["month", "sex"], "door": "api"}
    get(stats_api(iom), "month,sex")  # a cached answer is a read too
    assert AuditEvent.objects.filter(action="statistics.viewed").count() == 2


def test_the_schema_documents_the_endpoint(db, stats_api, iom):
    response = stats_api(iom).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    operation = json.loads(response.content)["paths"]["/api/v1/statistics/referrals/"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"from", "to", "by"}
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
