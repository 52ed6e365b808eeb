"""The API reference a partner's developer reads (issue 22 item 7): every operation of the served schema
has a summary, a description of its own, examples of its request and answers, and its error responses as
problem+json with an example."""

from __future__ import annotations

import json

import pytest

SCHEMA = "/api/v1/schema/"


@pytest.fixture
def schema(iom, api_as):
    response = api_as(iom).get(SCHEMA, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return json.loads(response.content)


def operations(schema) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def shortcomings(method: str, path: str, operation: dict) -> list[str]:
    """What the reference lacks for one operation (empty when it is complete)."""
    name = f"{method} {path}"
    found = []
    if not (operation.get("summary") or "").strip():
        found.append(f"{name}: no summary")
    if len((operation.get("description") or "").strip()) < 20:
        found.append(f"{name}: no description")
    body = operation.get("requestBody")
    if body and not all(content.get("examples") for content in body["content"].values()):
        found.append(f"{name}: no request example")
    successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
    if not successes:
        found.append(f"{name}: no success response")
    for code, response in successes.items():
        if not (response.get("description") or "").strip() and not response.get("content"):
            found.append(f"{name}: response {code} is not described")
        for media, content in (response.get("content") or {}).items():
            if not content.get("examples"):
                found.append(f"{name}: no example of its {code} {media} answer")
    errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
    if not errors:
        found.append(f"{name}: no error response")
    for code, response in errors.items():
        problem = (response.get("content") or {}).get("application/problem+json")
        if not problem or not problem.get("examples") or not response.get("description"):
            found.append(f"{name}: error {code} is not a described problem+json with an example")
    return found


def test_every_operation_is_documented(schema):
    found = operations(schema)
    assert len(found) >= 39  # the served operations (issue 22 counted 39)
    missing = [line for method, path, operation in found for line in shortcomings(method, path, operation)]
    assert missing == []


def test_the_check_fails_on_an_undocumented_operation():
    bare = {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}
    assert shortcomings("GET", "/api/v1/x/", bare) == [
        "GET /api/v1/x/: no summary",
        "GET /api/v1/x/: no description",
        "GET /api/v1/x/: no example of its 200 application/json answer",
        "GET /api/v1/x/: no error response",
    ]


def test_a_create_operation_has_its_own_text(schema):
    """On a path with a list and a create, the create does not repeat the list's text (issue 22)."""
    pairs = [item for item in schema["paths"].values() if "get" in item and "post" in item]
    assert len(pairs) >= 3  # cases, referrals, webhooks (and notes)
    for item in pairs:
        assert item["get"]["summary"] != item["post"]["summary"]
        assert item["get"]["description"] != item["post"]["description"]
    create = schema["paths"]["/api/v1/cases/"]["post"]
    assert create["summary"] == "Create a case"
    assert "exact search by document number" not in create["description"]


def test_examples_show_requests_and_answers(schema):
    create = schema["paths"]["/api/v1/referrals/"]["post"]
    request = create["requestBody"]["content"]["application/json"]["examples"]
    assert {"to_institution", "services", "consent"} <= set(next(iter(request.values()))["value"])
    answer = create["responses"]["201"]["content"]["application/json"]["examples"]
    assert next(iter(answer.values()))["value"]["status"] == "draft"
    conflict = schema["paths"]["/api/v1/referrals/{id}/accept/"]["post"]["responses"]["409"]
    example = next(iter(conflict["content"]["application/problem+json"]["examples"].values()))["value"]
    assert example["status"] == 409 and example["type"].startswith("/problems/")
