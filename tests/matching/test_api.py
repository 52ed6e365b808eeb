"""``POST /api/v1/cases/match/`` (contract §6.2): scope, visibility, strict input, no personal data out."""

from __future__ import annotations

import datetime
import json

import pytest

from accounts.choices import Scope
from audit.models import AuditEvent
from tests.api.helpers import API, assert_problem

MATCH = f"{API}/cases/match/"
REASONS = {
    "document_number",
    "name_exact",
    "name_similar",
    "date_of_birth",
    "date_of_birth_close",
    "sex",
    "nationality",
}

PERSON = {
    "given_name": "Yeferson Andrés",
    "family_name": "Vásquez Rondón",
    "date_of_birth": "1994-03-07",
    "sex": "male",
    "nationality": "VEN",
    "document_number": "V-18.222.333",
}


@pytest.fixture
def service(iom, service_actor):
    return service_actor(iom)


def D(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


@pytest.fixture
def person_case(service, make_case):
    return make_case(
        service, **dict(PERSON, date_of_birth=D(PERSON["date_of_birth"]), document_type="national_id")
    )


def post(client, body):
    return client.post(MATCH, data=json.dumps(body), content_type="application/json")


def test_finds_the_person_written_otherwise(sender_api, person_case):
    response = post(
        sender_api,
        {"given_name": "JEFFERSON", "family_name": "Vazquez", "date_of_birth": "1994-07-03", "sex": "male"},
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0]["case"] == str(person_case.pk)
    assert results[0]["reference"] == person_case.reference
    assert results[0]["score"] >= 0.5
    assert set(results[0]["reasons"]) == {"name_similar", "date_of_birth_close", "sex"}
    assert set(results[0]) == {"case", "reference", "score", "reasons"}


def test_document_number_however_written(sender_api, person_case):
    response = post(sender_api, {"document_number": "v 18222333"})
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["case"] == str(person_case.pk)
    assert result["score"] >= 0.5 and result["reasons"] == ["document_number"]


def test_results_are_ordered_unique_and_at_most_ten(sender_api, service, make_case):
    for i in range(13):
        make_case(
            service,
            given_name="Ana",
            family_name="Pérez",
            date_of_birth=D(f"1990-05-{i + 1:02d}"),
            document_number=f"P{i}",
            document_type="passport",
        )
    response = post(sender_api, {"given_name": "Ana", "family_name": "Perez", "date_of_birth": "1990-05-01"})
    results = response.json()["results"]
    assert len(results) == 10
    assert len({r["case"] for r in results}) == 10
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(set(r["reasons"]) <= REASONS and 0.0 <= r["score"] <= 1.0 for r in results)


def test_same_name_born_years_apart_scores_below_half(sender_api, person_case):
    body = dict(PERSON, date_of_birth="1970-03-07")
    body.pop("document_number")
    results = post(sender_api, body).json()["results"]
    assert [r for r in results if r["score"] >= 0.5] == [], results


def test_another_institutions_cases_are_never_returned(sender_api, receiver_api, person_case):
    response = post(receiver_api, PERSON)
    assert response.status_code == 200
    assert response.json() == {"results": []}
    assert post(sender_api, PERSON).json()["results"][0]["case"] == str(person_case.pk)


def test_only_cases_the_caller_may_see(iom, make_user, user_api, person_case, iom_caseworker, make_case):
    """A caseworker sees only the cases assigned to them: another caseworker's case is not a result."""
    other = make_user(iom, username="iom.other")
    assert post(user_api(other), PERSON).json() == {"results": []}


def test_erased_cases_are_not_returned(sender_api, person_case):
    from referrals.data_rights import subject_erase

    subject_erase(case=person_case)
    assert post(sender_api, PERSON).json() == {"results": []}


def test_without_token_401(client, person_case):
    response = client.post(MATCH, data=json.dumps(PERSON), content_type="application/json")
    assert_problem(response, 401, "not-authenticated")


def test_without_referrals_read_403(iom, api_as, person_case):
    client = api_as(iom, scopes=[Scope.REFERRALS_WRITE])
    assert_problem(post(client, PERSON), 403, "permission-denied")


def test_read_scope_is_enough(iom, api_as, person_case):
    client = api_as(iom, scopes=[Scope.REFERRALS_READ])
    assert post(client, PERSON).status_code == 200


def test_unknown_field_400(sender_api):
    assert_problem(post(sender_api, dict(PERSON, phone="123")), 400, "validation-error", errors={"phone"})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"given_name": "Ana"},
        {"family_name": "Pérez", "date_of_birth": "1990-01-01"},
        {"given_name": " ", "family_name": "Pérez"},
        {"sex": "female", "nationality": "VEN"},
        {"document_number": ""},
    ],
)
def test_neither_names_nor_document_400(sender_api, body):
    assert_problem(post(sender_api, body), 400, "validation-error")


@pytest.mark.parametrize(
    "field,value",
    [
        ("given_name", 12),
        ("family_name", True),
        ("document_number", 12345678),
        ("date_of_birth", 19900101),
        ("date_of_birth", "1990-01-01T00:00:00Z"),
        ("date_of_birth", "01/02/1990"),
        ("sex", 1),
        ("sex", "robot"),
        ("nationality", "ve"),
        ("nationality", 862),
        ("given_name", ["Ana"]),
        ("given_name", {"a": 1}),
    ],
)
def test_strict_types_400(sender_api, field, value):
    body = dict(PERSON, **{field: value})
    assert_problem(post(sender_api, body), 400, "validation-error", errors={field})


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b'{"given_name": NaN}', b'{"given_name": 1e999}', b"{"])
def test_non_object_or_non_finite_400(sender_api, raw):
    response = sender_api.post(MATCH, data=raw, content_type="application/json")
    assert_problem(response, 400, "validation-error")


def test_no_personal_data_in_answer_or_audit(sender_api, person_case):
    response = post(sender_api, PERSON)
    text = response.content.decode()
    event = AuditEvent.objects.filter(action="case.searched").order_by("-sequence").first()
    assert event is not None and event.object_type == "case"
    assert event.detail["by"] == "match" and event.detail["matches"] == 1
    stored = json.dumps(event.detail)
    for secret in (
        "Yeferson",
        "Andrés",
        "Vásquez",
        "Rondón",
        "1994",
        "18222333",
        "18.222.333",
        '"VEN"',
        '"male"',
    ):
        assert secret.lower() not in text.lower()
        assert secret.lower() not in stored.lower()


def test_searches_are_audited_even_without_results(sender_api):
    before = AuditEvent.objects.filter(action="case.searched").count()
    assert post(sender_api, {"document_number": "nothing-here"}).json() == {"results": []}
    assert AuditEvent.objects.filter(action="case.searched").count() == before + 1


def test_query_count_is_constant(sender_api, service, make_case, django_assert_max_num_queries):
    for i in range(3):
        make_case(service, given_name="Luis", family_name="Gómez", date_of_birth=D(f"1980-02-0{i + 1}"))
    with django_assert_max_num_queries(12) as few:
        post(sender_api, {"given_name": "Luis", "family_name": "Gomez", "date_of_birth": "1980-02-01"})
    for i in range(20):
        make_case(service, given_name="Luis", family_name="Gómez", date_of_birth=D(f"1980-03-{i + 1:02d}"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        post(sender_api, {"given_name": "Luis", "family_name": "Gomez", "date_of_birth": "1980-02-01"})


def test_schema_describes_the_endpoint(sender_api):
    schema = sender_api.get(f"{API}/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/cases/match/"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403"}
