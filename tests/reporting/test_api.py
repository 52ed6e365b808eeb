"""``GET /api/v1/statistics/referrals/`` (contract §6.4) on the built data set of ``conftest.py``."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from tests.api.helpers import assert_problem

from .conftest import DOCUMENTS, PERSON_NAMES

URL = "/api/v1/statistics/referrals/"
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def get(client, by, **params):
    return client.get(URL, {**MARCH, "by": by, **params})


def counts(response) -> dict:
    """``{key values: count}`` (a single dimension's value alone), ``None`` for suppressed rows."""
    assert response.status_code == 200, response.content[:400]
    out = {}
    for row in response.json()["rows"]:
        values = tuple(row["key"].values())
        out[values[0] if len(values) == 1 else values] = row["count"]
        assert row["suppressed"] is (row["count"] is None)
    return out


# --- exact counts -----------------------------------------------------------------------------------


def test_the_response_shape(dataset, stats_api, iom, min_cell_2):
    response = get(stats_api(iom), "status")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "by": ["status"],
        "min_cell": 2,
        "total": 9,
        "rows": [
            {"key": {"status": "accepted"}, "count": 6, "suppressed": False, "median_hours_to_answer": 3.5},
            {"key": {"status": "requested"}, "count": 3, "suppressed": False, "median_hours_to_answer": None},
        ],
    }


def test_exact_counts_for_the_sender(dataset, stats_api, iom, min_cell_2):
    client = stats_api(iom)
    assert counts(get(client, "sex")) == {"female": 7, "male": 2}
    assert counts(get(client, "nationality")) == {"COL": 2, "VEN": 7}
    assert counts(get(client, "is_minor")) == {False: 7, True: 2}
    assert counts(get(client, "month")) == {"2026-03": 9}
    assert counts(get(client, "to_institution")) == {"DP": None, "IOM": None}  # 1, and 8 as its complement
    assert counts(get(client, "service")) == {
        "child_protection": 2,
        "health": None,
        "legal_assistance": 6,
        "protection": 6,
    }
    # 60+ is 1: suppressed, and the next smallest (12-17, 2) with it.
    assert counts(get(client, "age_band")) == {"12-17": None, "30-59": 6, "60+": None}


def test_the_receiver_counts_what_consent_did_not_give_as_unknown(dataset, stats_api, dp, min_cell_2):
    client = stats_api(dp)
    assert counts(get(client, "sex")) == {"female": 7, "unknown": 2}
    assert counts(get(client, "nationality")) == {"VEN": 7, "unknown": 2}
    assert counts(get(client, "is_minor")) == {False: 7, "unknown": 2}
    assert counts(get(client, "age_band")) == {"30-59": 6, "60+": None, "unknown": None}
    # Dimensions that are not the person's stay known.
    assert counts(get(client, "urgency")) == {"emergency": None, "normal": 6, "urgent": None}
    assert counts(get(client, "service"))["child_protection"] == 2


def test_a_consent_withdrawal_makes_the_person_unknown_to_the_receiver(
    dataset, stats_api, dp, iom_actor, min_cell_2
):
    from referrals import services

    services.consent_withdraw(actor=iom_actor, referral_id=dataset["accepted"][0].pk, reason="Retiro")
    assert counts(get(stats_api(dp), "sex")) == {"female": 6, "unknown": 3}


def test_two_dimensions(dataset, stats_api, iom, min_cell_2):
    body = get(stats_api(iom), "from_institution,sex").json()
    assert body["by"] == ["from_institution", "sex"]
    assert body["rows"] == [
        {
            "key": {"from_institution": "DP", "sex": "female"},
            "count": None,
            "suppressed": True,
            "median_hours_to_answer": None,
        },
        {
            "key": {"from_institution": "IOM", "sex": "female"},
            "count": 6,
            "suppressed": False,
            "median_hours_to_answer": 3.5,
        },
        {
            "key": {"from_institution": "IOM", "sex": "male"},
            "count": 2,
            "suppressed": False,
            "median_hours_to_answer": None,
        },
    ]
    assert body["total"] == 9


def test_default_min_cell_is_five(dataset, stats_api, iom):
    body = get(stats_api(iom), "sex").json()
    assert body["min_cell"] == 5
    assert body["total"] == 9
    # male 2 is small; female 7 is its complement: nothing published but the total.
    assert [(r["key"]["sex"], r["count"], r["suppressed"]) for r in body["rows"]] == [
        ("female", None, True),
        ("male", None, True),
    ]
    # Services overlap: no complement; 6 answered of 6 give a median.
    service = {r["key"]["service"]: r for r in get(stats_api(iom), "service").json()["rows"]}
    assert service["legal_assistance"] == {
        "key": {"service": "legal_assistance"},
        "count": 6,
        "suppressed": False,
        "median_hours_to_answer": 3.5,
    }
    assert service["protection"]["count"] == 6
    assert service["child_protection"]["suppressed"] and service["health"]["suppressed"]


def test_period_bounds_are_inclusive_utc_dates(dataset, stats_api, iom, min_cell_2):
    client = stats_api(iom)
    assert get(client, "month", **{"from": "2026-03-01", "to": "2026-03-01"}).json()["rows"] == [
        {"key": {"month": "2026-03"}, "count": None, "suppressed": True, "median_hours_to_answer": None}
    ]
    assert counts(get(client, "month", **{"from": "2026-03-31", "to": "2026-04-01"})) == {
        "2026-03": None,
        "2026-04": None,
    }
    assert get(client, "month", **{"from": "2026-01-01", "to": "2026-12-31"}).json()["total"] == 10
    assert get(client, "month", **{"from": "2026-04-01", "to": "2026-04-01"}).json()["total"] is None


# --- institution boundaries ------------------------------------------------------------------------


def test_an_institution_without_referrals_sees_nothing(dataset, stats_api, third, min_cell_2):
    body = get(stats_api(third), "from_institution").json()
    assert body["total"] is None and body["rows"] == []


def test_only_the_referrals_an_institution_sent_or_received(
    dataset, stats_api, dp, third, refer, make_user, min_cell_2
):
    from accounts.actor import actor_for_user

    third_actor = actor_for_user(make_user(third, username="third.cw"))
    for _ in range(3):
        referral = refer(third_actor, None, dp, subject={"sex": "other"})
        from .conftest import MARCH as march
        from .conftest import sent_at

        sent_at(referral, march)
    assert counts(get(stats_api(dp), "from_institution")) == {
        "DP": None,
        "IOM": 8,
        "UNHCR": None,
    }  # 1, and 3 as its complement
    assert counts(get(stats_api(third), "to_institution")) == {"DP": 3}
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
