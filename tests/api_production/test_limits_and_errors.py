"""Limits and errors: 413 over 1 MiB, unknown fields at every level, every error problem+json under /api/,
hostile input never a 500."""

from __future__ import annotations

import io
import json
import uuid
from unittest import mock

import pytest
from django.test import Client

from referrals.models import Case

from .conftest import API, assert_problem, case_body, referral_body

MIB = 1024 * 1024


def _raw(client, path, data: bytes, content_type="application/json", method="post", **extra):
    return getattr(client, method)(f"{API}{path}", data=data, content_type=content_type, **extra)


def test_body_over_1_mib_is_413(iom_api):
    body = json.dumps({"summary": "x" * MIB}).encode()
    assert_problem(_raw(iom_api, "/cases/", body), 413, "payload-too-large")


def _through_the_serving_application(environ: dict) -> tuple[str, dict, bytes]:
    """One request through ``config.wsgi.application`` — what gunicorn and runserver call (PEP 3333)."""
    from wsgiref.util import setup_testing_defaults

    from config.wsgi import application

    setup_testing_defaults(environ)
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=dict(headers))

    result = application(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()
    return started["status"], started["headers"], body


def test_chunked_body_over_1_mib_is_413_even_without_content_length(transactional_db, iom, make_token):
    """A body sent without Content-Length (chunked) is read at most 1 MiB + 1 byte by the serving
    application's WSGI guard, then refused; a small one is created (201). Through real gunicorn:
    tests/config/test_gunicorn_limits.py."""
    token = make_token(iom)

    class Endless(io.RawIOBase):
        """A chunked body that never ends: only what the guard asks for may be read."""

        def __init__(self):
            self.served = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"x" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    small = json.dumps(case_body()).encode()
    big = json.dumps({"subject": {"given_name": "a"}, "summary": "x" * (MIB + 10)}).encode()
    endless = Endless()
    for stream, status in ((io.BytesIO(big), "413"), (endless, "413"), (io.BytesIO(small), "201")):
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"{API}/cases/",
            "CONTENT_TYPE": "application/json",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "wsgi.input": stream,
        }
        got, headers, body = _through_the_serving_application(environ)
        assert got.startswith(status), (got, body[:300])
        if status == "413":
            assert headers["Content-Type"].startswith("application/problem+json")
            assert json.loads(body)["type"] == "/problems/payload-too-large"
    assert endless.served == MIB + 1  # read no further than the limit + 1 byte
    assert Case.objects.count() == 1


def test_unknown_fields_are_rejected_at_every_level(iom_api, iom):
    top = case_body()
    top["extra"] = 1
    nested = case_body()
    nested["subject"]["nickname"] = "x"
    for body, field in ((top, "extra"), (nested, "subject.nickname")):
        problem = assert_problem(iom_api.post(f"{API}/cases/", body, format="json"), 400, "validation-error")
        assert field in problem["errors"], problem
    case_id = iom_api.post(f"{API}/cases/", case_body(), format="json").json()["id"]
    body = referral_body(case_id)
    body["consent"]["witness"] = "x"
    problem = assert_problem(iom_api.post(f"{API}/referrals/", body, format="json"), 400, "validation-error")
    assert "consent.witness" in problem["errors"]


@pytest.mark.parametrize(
    "method,path,status,slug",
    [
        ("get", "/referrals/not-a-uuid/", 404, "not-found"),
        ("get", "/cases/123/", 404, "not-found"),
        ("get", "/no-such-endpoint/", 404, "not-found"),
        ("get", f"/referrals/{uuid.uuid4()}/", 404, "not-found"),
        ("delete", "/cases/", 405, "method-not-allowed"),
        ("put", "/referrals/", 405, "method-not-allowed"),
        ("options", "/referrals/", 405, "method-not-allowed"),
        ("get", f"/referrals/{uuid.uuid4()}/accept/", 405, "method-not-allowed"),
    ],
)
def test_django_and_drf_errors_under_api_are_problems(iom_api, method, path, status, slug):
    assert_problem(getattr(iom_api, method)(f"{API}{path}"), status, slug)


def test_malformed_json_is_400(iom_api):
    for raw in (b"{", b'{"subject": }', b"\xff\xfe", b"NaN", b'{"a": Infinity}', b"[1,]"):
        assert_problem(_raw(iom_api, "/cases/", raw), 400, "validation-error")


def test_wrong_content_type_is_415(iom_api):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = _raw(iom_api, "/cases/", b"subject=1", content_type=content_type)
        assert_problem(response, 415, "unsupported-media-type")


def test_accept_header_cannot_break_problem_rendering(iom_api):
    response = iom_api.get(f"{API}/referrals/not-a-uuid/", HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("application/problem+json")
    response = iom_api.get(f"{API}/cases/", HTTP_ACCEPT="application/xml")
    assert_problem(response, 406, "not-acceptable")


HOSTILE = [
    ("lone surrogate", '{"subject": {"given_name": "\\ud800"}, "summary": "s"}'),
    ("NUL byte", '{"subject": {"given_name": "a\\u0000b"}, "summary": "s"}'),
    ("1 MB string", json.dumps({"subject": {"given_name": "a" * 1_000_000}})),
    ("deep nesting", '{"subject": ' + "[" * 50_000 + "]" * 50_000 + "}"),
    ("moderate nesting", '{"subject": {"languages": ' + "[" * 40 + "]" * 40 + "}}"),
    ("huge integer", '{"subject": {"given_name": ' + "9" * 5000 + "}}"),
    ("big integer", '{"subject": {"given_name": "a", "is_minor": ' + "9" * 100 + "}}"),
    ("array for object", '{"subject": ["given_name"], "summary": "s"}'),
    ("array body", '[{"subject": {"given_name": "a"}}]'),
    ("string body", '"hello"'),
    ("null body", "null"),
    ("object for string", '{"subject": {"given_name": {"$gt": ""}}}'),
    ("number for date", '{"subject": {"given_name": "a", "date_of_birth": 1e308}}'),
    ("bad date", '{"subject": {"given_name": "a", "date_of_birth": "1990-02-30"}}'),
    ("null subject", '{"subject": null}'),
]


@pytest.mark.parametrize("name,raw", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_are_400_never_500(iom_api, name, raw):
    response = _raw(iom_api, "/cases/", raw.encode())
    assert response.status_code in (400, 413), (name, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/problem+json")
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    "query",
    [
        "status=%00",
        "status=\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
        "updated_since=" + "9" * 1000,
        "direction=sideways",
        "page_size=" + "9" * 400,
        "ordering=%27%3B--",
        "document_number=" + "A" * 1000,
    ],
)
def test_hostile_query_strings_are_never_500(iom_api, query):
    for path in ("/referrals/", "/cases/"):
        response = iom_api.get(f"{API}{path}?{query}")
        assert response.status_code in (200, 400), (path, query[:40], response.status_code)
        if response.status_code == 400:
            assert_problem(response, 400, "validation-error")


def test_unexpected_exceptions_are_a_500_problem_without_internals(iom_api):
    with mock.patch("referrals.selectors.referrals_visible_to", side_effect=RuntimeError("secret internals")):
        response = iom_api.get(f"{API}/referrals/")
    body = assert_problem(response, 500, "server-error")
    assert "secret" not in json.dumps(body) and "Traceback" not in response.content.decode()


def test_django_level_500_under_api_is_a_problem(iom, make_token):
    """An exception outside DRF (here in URL resolution's view) still answers problem+json."""
    client = Client(raise_request_exception=False)
    token = make_token(iom)
    with mock.patch("referrals.api.views.ReferralListCreate.dispatch", side_effect=RuntimeError("boom")):
        response = client.get(f"{API}/referrals/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_problem(response, 500, "server-error")
    assert b"boom" not in response.content


def test_times_are_rfc3339_utc(iom_api):
    body = iom_api.post(f"{API}/cases/", case_body(), format="json").json()
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")


@pytest.mark.parametrize("code", ["D\x00P", "\ud800", "dp", "X" * 40, 12, None, ["DP"], {"code": "DP"}])
def test_malformed_institution_codes_never_reach_the_database(iom_api, code):
    case_id = iom_api.post(f"{API}/cases/", case_body(), format="json").json()["id"]
    body = referral_body(case_id)
    body["to_institution"] = code
    problem = assert_problem(iom_api.post(f"{API}/referrals/", body, format="json"), 400, "validation-error")
    assert "to_institution" in problem["errors"]
