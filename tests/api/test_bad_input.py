"""Bad input is a 400 problem+json, never a 500 (issue 2): malformed JSON, unknown fields at every
nesting level, wrong types, unknown institution or service, hostile strings. Hostile text that is clean
Unicode (contract §7.5: no control or bidirectional characters) is data: stored and returned verbatim,
never interpreted."""

from __future__ import annotations

import json
import uuid

import pytest
from rest_framework import serializers

from referrals.api.serializers import InstitutionCodeField
from referrals.models import Case, Note, Referral

from .helpers import API, assert_problem, case_body, referral_body

CASES, REFERRALS = f"{API}/cases/", f"{API}/referrals/"


def _raw(client, path, raw):
    return client.post(path, data=raw, content_type="application/json")


def _counts():
    return Case.objects.count(), Referral.objects.count(), Note.objects.count()


@pytest.fixture
def case_id(referral_in):
    return referral_in("draft").case_id


@pytest.fixture
def accepted(referral_in):
    return referral_in("accepted")


# --- malformed and non-object JSON --------------------------------------------------------------

MALFORMED = [
    b'{"subject": ',
    b"{",
    b"not json",
    b'{"summary": "a",}',
    b"{'summary': 'single quotes'}",
    b'{"summary": "\xff\xfe"}',
    b'{"summary": NaN}',
    b'{"summary": "a"} trailing',
    b"[" * 5000 + b"]" * 5000,
]


@pytest.mark.parametrize("raw", MALFORMED, ids=[f"malformed-{i}" for i in range(len(MALFORMED))])
def test_malformed_json_is_400(raw, sender_api, accepted, case_id):
    before = _counts()
    paths = [
        CASES,
        REFERRALS,
        f"{API}/referrals/{accepted.pk}/notes/",
        f"{API}/referrals/{accepted.pk}/cancel/",
    ]
    paths += [f"{API}/referrals/{accepted.pk}/consent/withdraw/"]
    for path in paths:
        assert_problem(_raw(sender_api, path, raw), 400, "validation-error")
    assert _counts() == before


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null", b"true", b'[{"subject": {}}]'])
def test_a_body_that_is_not_an_object_is_400(raw, sender_api, receiver_api, accepted):
    for client, path in [
        (sender_api, CASES),
        (sender_api, REFERRALS),
        (sender_api, f"{API}/referrals/{accepted.pk}/notes/"),
        (receiver_api, f"{API}/referrals/{accepted.pk}/start/"),
    ]:
        assert_problem(_raw(client, path, raw), 400, "validation-error")


def test_a_wrong_content_type_is_refused_cleanly(sender_api):
    response = sender_api.post(CASES, data="subject=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 415)
    assert response["Content-Type"].startswith("application/problem+json")


# --- unknown fields at every level, wrong types -------------------------------------------------


def _case_with(**changes):
    body = case_body()
    for dotted, value in changes.items():
        target = body
        *parents, leaf = dotted.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return body


CASE_ERRORS = [
    ({"foo": 1}, {"foo"}),
    ({"subject__foo": "x"}, {"subject.foo"}),
    ({"subject": "María"}, {"subject.non_field_errors"}),
    ({"subject": None}, {"subject"}),
    ({"subject": ["María"]}, {"subject.non_field_errors"}),
    ({"subject__given_name": {"a": 1}}, {"subject.given_name"}),
    ({"subject__given_name": ["x"]}, {"subject.given_name"}),
    ({"subject__given_name": ""}, {"subject.given_name"}),
    ({"subject__given_name": True}, {"subject.given_name"}),
    ({"subject__date_of_birth": "yesterday"}, {"subject.date_of_birth"}),
    ({"subject__date_of_birth": 19900501}, {"subject.date_of_birth"}),
    ({"subject__date_of_birth": "2999-01-01"}, {"subject.date_of_birth"}),
    ({"subject__is_minor": "maybe"}, {"subject.is_minor"}),
    ({"subject__languages": "es"}, {"subject.languages"}),
    ({"subject__languages": [1]}, {"subject.languages"}),
    ({"subject__sex": "alien"}, {"subject.sex"}),
    ({"subject__document_type": "visa"}, {"subject.document_type"}),
    ({"subject__nationality": "Venezuela"}, {"subject.nationality"}),
    ({"subject__email": "not-an-email"}, {"subject.email"}),
    ({"subject__given_name": "x" * 201}, {"subject.given_name"}),
    ({"summary": []}, {"summary"}),
    ({"summary": "x" * 20001}, {"summary"}),
]


@pytest.mark.parametrize(
    "changes,errors", CASE_ERRORS, ids=[str(sorted(e)) + str(i) for i, (_, e) in enumerate(CASE_ERRORS)]
)
def test_case_input_errors(changes, errors, sender_api):
    before = _counts()
    response = sender_api.post(CASES, _case_with(**changes), format="json")
    body = assert_problem(response, 400, "validation-error")
    assert {_base(k) for k in body["errors"]} == errors, body
    assert _counts() == before


@pytest.mark.parametrize(
    "path,body,outer,inner",
    [
        (
            "cases",
            {**case_body(), "bar": 2, "subject": {**case_body()["subject"], "foo": 1}},
            "bar",
            "subject.foo",
        ),
        ("referrals", None, "baz", "consent.bar"),
    ],
)
def test_unknown_fields_at_two_levels_at_once(path, body, outer, inner, sender_api, case_id):
    if body is None:
        body = referral_body(case_id)
        body["baz"] = 2
        body["consent"]["bar"] = 1
    errors = assert_problem(sender_api.post(f"{API}/{path}/", body, format="json"), 400, "validation-error")[
        "errors"
    ]
    assert outer in errors and set(errors) <= {outer, inner}, errors


def test_case_missing_subject_or_given_name(sender_api):
    assert_problem(
        sender_api.post(CASES, {"summary": "s"}, format="json"), 400, "validation-error", errors={"subject"}
    )
    body = case_body()
    del body["subject"]["given_name"]
    assert_problem(
        sender_api.post(CASES, body, format="json"), 400, "validation-error", errors={"subject.given_name"}
    )


def _referral_with(case_id, **changes):
    body = referral_body(case_id)
    for dotted, value in changes.items():
        target = body
        *parents, leaf = dotted.split("__")
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return body


_DELETE = object()
REFERRAL_ERRORS = [
    ({"foo": 1}, {"foo"}),
    ({"consent__bar": 1}, {"consent.bar"}),
    ({"status": "accepted"}, {"status"}),  # read-only: always a draft
    ({"to_institution": "XX"}, {"to_institution"}),
    ({"to_institution": "dp"}, {"to_institution"}),
    ({"to_institution": 5}, {"to_institution"}),
    ({"to_institution": None}, {"to_institution"}),
    ({"to_institution": "IOM"}, {"to_institution"}),  # to its own institution
    ({"services": ["teleport"]}, {"services"}),
    ({"services": "legal_assistance"}, {"services"}),
    ({"services": []}, {"services"}),
    ({"services": [{"a": 1}]}, {"services"}),
    ({"urgency": "whenever"}, {"urgency"}),
    ({"urgency": 3}, {"urgency"}),
    ({"case": "not-a-uuid"}, {"case"}),
    ({"case": 123}, {"case"}),
    ({"case": str(uuid.UUID(int=7))}, {"case"}),
    ({"consent": "yes"}, {"consent.non_field_errors"}),
    ({"consent__given": "perhaps"}, {"consent.given"}),
    ({"consent__data_categories": ["dna"]}, {"consent.data_categories"}),
    ({"consent__data_categories": "identity"}, {"consent.data_categories"}),
    ({"consent__obtained_at": "yesterday"}, {"consent.obtained_at"}),
    ({"consent__given_by": _DELETE}, {"consent.given_by"}),
    ({"consent__method": "telepathy"}, {"consent.method"}),
    ({"reason": {"text": "x"}}, {"reason"}),
]


@pytest.mark.parametrize(
    "changes,errors",
    REFERRAL_ERRORS,
    ids=[str(sorted(e)) + str(i) for i, (_, e) in enumerate(REFERRAL_ERRORS)],
)
def test_referral_input_errors(changes, errors, sender_api, case_id):
    before = _counts()
    response = sender_api.post(REFERRALS, _referral_with(case_id, **changes), format="json")
    body = assert_problem(response, 400, "validation-error")
    # a list's item errors may be named by their index (services.0): compare the field part
    assert {_base(k) for k in body["errors"]} == errors, body
    assert _counts() == before


def _base(key):
    parts = key.split(".")
    while parts and parts[-1].isdigit():
        parts.pop()
    return ".".join(parts)


def test_a_case_of_another_institution_is_refused(sender_api, dp_actor, make_case):
    foreign_case = make_case(dp_actor)
    before = _counts()
    response = sender_api.post(REFERRALS, referral_body(foreign_case.pk, to="UNHCR"), format="json")
    assert_problem(response, 400, "validation-error")
    response = sender_api.post(REFERRALS, referral_body(foreign_case.pk, to="DP"), format="json")
    assert_problem(response, 400, "validation-error", errors={"case"})
    assert _counts() == before


def test_action_and_note_bodies(sender_api, receiver_api, accepted):
    ref = f"{API}/referrals/{accepted.pk}"
    cases = [
        (receiver_api, f"{ref}/start/", {"junk": 1}, {"junk"}),
        (receiver_api, f"{ref}/start/", {"reason": "no reason is taken here"}, {"reason"}),
        (receiver_api, f"{ref}/fail/", {"reason": ["x"]}, {"reason"}),
        (receiver_api, f"{ref}/fail/", {"reason": "x", "outcome": "y"}, {"outcome"}),
        (receiver_api, f"{ref}/fail/", {"reason": "x" * 20001}, {"reason"}),
        (sender_api, f"{ref}/notes/", {}, {"body"}),
        (sender_api, f"{ref}/notes/", {"body": ""}, {"body"}),
        (sender_api, f"{ref}/notes/", {"body": None}, {"body"}),
        (sender_api, f"{ref}/notes/", {"body": {"html": "<b>"}}, {"body"}),
        (sender_api, f"{ref}/notes/", {"body": "x", "author": "DP"}, {"author"}),
        (sender_api, f"{ref}/consent/withdraw/", {"reason": "x", "cancel": False}, {"cancel"}),
    ]
    before = _counts()
    for client, path, payload, errors in cases:
        assert_problem(client.post(path, payload, format="json"), 400, "validation-error", errors=errors)
    assert _counts() == before
    assert Referral.objects.get(pk=accepted.pk).version == accepted.version


# --- hostile strings ------------------------------------------------------------------------------


LONE_SURROGATE = "\\ud800"  # the six characters of the JSON escape, sent raw


def _surrogate_requests(sender_api, receiver_api, accepted, case_id):
    ref = f"{API}/referrals/{accepted.pk}"
    base_case = json.dumps(case_body())
    base_referral = json.dumps(referral_body(case_id))
    return [
        (sender_api, CASES, base_case.replace('"Zuleikaxq"', f'"Zu{LONE_SURROGATE}"'), "subject.given_name"),
        (sender_api, CASES, base_case.replace('"female"', f'"{LONE_SURROGATE}"'), "subject.sex"),
        (sender_api, CASES, base_case.replace('"summary"', f'"x{LONE_SURROGATE}"'), None),
        (sender_api, REFERRALS, base_referral.replace('"DP"', f'"{LONE_SURROGATE}"'), "to_institution"),
        (sender_api, REFERRALS, base_referral.replace('"legal_assistance"', f'"{LONE_SURROGATE}"'), None),
        (sender_api, f"{ref}/notes/", f'{{"body": "hola {LONE_SURROGATE}"}}', "body"),
        (receiver_api, f"{ref}/fail/", f'{{"reason": "{LONE_SURROGATE}"}}', "reason"),
    ]


def test_a_lone_surrogate_is_400_wherever_it_is_sent(sender_api, receiver_api, accepted, case_id):
    before = _counts()
    for client, path, raw, field in _surrogate_requests(sender_api, receiver_api, accepted, case_id):
        body = assert_problem(_raw(client, path, raw), 400, "validation-error")
        if field:
            assert field in body["errors"], ascii(body)
    assert _counts() == before


def test_problem_bodies_are_valid_unicode_even_for_a_lone_surrogate(
    sender_api, receiver_api, accepted, case_id
):
    bad = []
    for client, path, raw, _field in _surrogate_requests(sender_api, receiver_api, accepted, case_id):
        response = _raw(client, path, raw)
        try:
            json.dumps(response.json(), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            bad.append((path, response.json()))
    assert bad == [], ascii(bad)


def test_nul_bytes_are_400(sender_api, receiver_api, accepted, case_id):
    ref = f"{API}/referrals/{accepted.pk}"
    before = _counts()
    posts = [
        (sender_api, CASES, _case_with(subject__given_name="Zu\x00leika"), "subject.given_name"),
        (sender_api, CASES, _case_with(summary="a\x00b"), "summary"),
        (sender_api, REFERRALS, _referral_with(case_id, reason="\x00"), "reason"),
        (sender_api, f"{ref}/notes/", {"body": "\x00\x00"}, "body"),
        (receiver_api, f"{ref}/fail/", {"reason": "no\x00"}, "reason"),
    ]
    for client, path, payload, field in posts:
        body = assert_problem(client.post(path, payload, format="json"), 400, "validation-error")
        assert field in body["errors"], body
    assert _counts() == before


def test_nul_in_an_institution_code_is_400(sender_api, case_id):
    """SQLite and PostgreSQL alike: the format is checked before the lookup (PostgreSQL refuses NUL)."""
    before = _counts()
    response = sender_api.post(REFERRALS, _referral_with(case_id, to_institution="DP\x00"), format="json")
    assert_problem(response, 400, "validation-error", errors={"to_institution"})
    assert _counts() == before


@pytest.mark.parametrize(
    "code",
    ["DP\x00", "\x00", "dp", "D", "X" * 17, "DP ", "DP\n", "D-P", "\ud800DP", 12, None, ["DP"], {"a": 1}],
)
def test_a_malformed_institution_code_is_refused_without_a_query(code, db, django_assert_num_queries):
    """The format ^[A-Z0-9_]{2,16}$ is checked before any database lookup, with a message echoing nothing."""
    field = InstitutionCodeField()
    with django_assert_num_queries(0), pytest.raises(serializers.ValidationError) as caught:
        field.run_validation(code)
    message = str(caught.value.detail[0])
    assert ("?" in message or code is None) and "\x00" not in message and "\ud800" not in message


def test_a_well_formed_unknown_institution_code_is_looked_up(django_assert_num_queries, iom):
    field = InstitutionCodeField()
    with django_assert_num_queries(1), pytest.raises(serializers.ValidationError):
        field.run_validation("NOPE")
    with django_assert_num_queries(1):
        assert field.run_validation("IOM") == iom


def test_an_oversized_body_is_413(sender_api):
    huge = json.dumps({"subject": {"given_name": "x"}, "summary": "x" * (1024 * 1024 + 10)})
    assert_problem(_raw(sender_api, CASES, huge), 413, "payload-too-large")


def test_a_long_but_admissible_body_is_a_clean_400(sender_api):
    body = _case_with(summary="x" * 900_000)
    assert_problem(sender_api.post(CASES, body, format="json"), 400, "validation-error", errors={"summary"})


HOSTILE_TEXT = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg/onload=alert(1)>{{7*7}}${7*7}",
    "'; DROP TABLE referrals_referral; --",
    "Robert \u05d0\u05d1 🇻🇪 ñ \u200f",
    'line1\nline2\ttab \\ backslash "quote"',
]


@pytest.mark.parametrize("text", HOSTILE_TEXT, ids=[f"hostile-{i}" for i in range(len(HOSTILE_TEXT))])
def test_hostile_text_is_stored_and_returned_verbatim(text, sender_api, receiver_api):
    created = sender_api.post(
        CASES,
        _case_with(subject__given_name=text, subject__current_location=text, summary=text),
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created["Content-Type"].startswith("application/json")
    case = sender_api.get(f"{API}/cases/{created.json()['id']}/").json()
    assert case["subject"]["given_name"] == text and case["summary"] == text
    referral = sender_api.post(
        REFERRALS, dict(referral_body(created.json()["id"]), reason=text), format="json"
    ).json()
    ref = f"{API}/referrals/{referral['id']}"
    assert sender_api.post(f"{ref}/send/", {}, format="json").status_code == 200
    note = receiver_api.post(f"{ref}/notes/", {"body": text}, format="json")
    assert note.status_code == 201 and note.json()["body"] == text
    seen = receiver_api.get(f"{ref}/")
    assert seen.json()["reason"] == text and seen.json()["subject"]["given_name"] == text
    assert seen["Content-Type"].startswith("application/json")
    assert [n["body"] for n in sender_api.get(f"{ref}/notes/").json()["results"]] == [text]


# --- query parameters -----------------------------------------------------------------------------

BAD_QUERIES = [
    ("direction=sideways", {"direction"}),
    ("status=open", {"status"}),
    ("status=requested,%00", {"status"}),
    ("updated_since=yesterday", {"updated_since"}),
    ("updated_since=2026-11-27T10:00:00", {"updated_since"}),  # no time zone
    ("updated_since=" + "9" * 500, {"updated_since"}),
    # Offsets beyond ±24 h: parse_datetime raises ValueError (was a 500), escaped or sent as a space.
    ("updated_since=2026-01-01T00:00:00%2B99:00", {"updated_since"}),
    ("updated_since=2026-01-01T00:00:00+99:00", {"updated_since"}),
    ("updated_since=2026-01-01T00:00:00-24:00", {"updated_since"}),
    ("updated_since=9999-12-31T23:59:59-23:59", {"updated_since"}),  # beyond year 9999 in UTC
    ("updated_since=2026-02-30T00:00:00Z", {"updated_since"}),
    ("ordering=-id", {"ordering"}),
    ("ordering=reason", {"ordering"}),
]


@pytest.mark.parametrize("query,errors", BAD_QUERIES, ids=[q for q, _ in BAD_QUERIES])
def test_bad_list_parameters_are_400(query, errors, sender_api):
    assert_problem(sender_api.get(f"{REFERRALS}?{query}"), 400, "validation-error", errors=errors)


@pytest.mark.parametrize(
    "query",
    [
        "page_size=abc",
        "page_size=-5",
        "page_size=0",
        "page_size=99999999999999999999",
        "cursor=garbage",
        "cursor=%00%ff",
    ],
)
def test_odd_paging_parameters_never_500(query, sender_api, accepted):
    for path in (
        REFERRALS,
        CASES,
        f"{API}/referrals/{accepted.pk}/events/",
        f"{API}/referrals/{accepted.pk}/notes/",
    ):
        response = sender_api.get(f"{path}?{query}")
        assert response.status_code in (200, 400, 404), (path, query, response.status_code)
        if response.status_code != 200:
            assert response["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("number", ["%00", "x" * 65, "%ED%A0%80", "<script>", "' OR 1=1 --"])
def test_odd_document_number_searches_never_500(number, sender_api, case_id):
    response = sender_api.get(f"{CASES}?document_number={number}")
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["results"] == []
    else:
        assert_problem(response, 400, "validation-error", errors={"document_number"})


# --- clean data at every door (contract §7.5) --------------------------------------------------------

#: Texts no door may store: C0/C1 control characters other than tab and newline, bidi controls.
UNCLEAN_TEXTS = [
    "a\u0001\u001b[31mb",  # ANSI escape
    "\u202eevil\u202c",  # right-to-left override
    "x\u2066y\u2069",  # isolates
    "\u202a\u202b\u202d",
    "a\u0085b",  # C1 (next line)
    "a\u009bb",  # C1 CSI
    "a\u007fb",  # DEL
    "a\rb",  # a lone carriage return
    "a\u000bb\u000c",  # vertical tab, form feed
]


@pytest.mark.parametrize("text", UNCLEAN_TEXTS, ids=[f"unclean-{i}" for i in range(len(UNCLEAN_TEXTS))])
def test_control_and_bidi_characters_are_400_wherever_a_text_is_sent(
    text, sender_api, receiver_api, accepted, case_id
):
    ref = f"{API}/referrals/{accepted.pk}"
    before = _counts()
    posts = [
        (sender_api, CASES, _case_with(subject__given_name=text), "subject.given_name"),
        (sender_api, CASES, _case_with(subject__family_name=text), "subject.family_name"),
        (sender_api, CASES, _case_with(subject__current_location=text), "subject.current_location"),
        (sender_api, CASES, _case_with(subject__protection_needs=text), "subject.protection_needs"),
        (sender_api, CASES, _case_with(summary=text), "summary"),
        (sender_api, REFERRALS, _referral_with(case_id, reason=text), "reason"),
        (sender_api, f"{ref}/notes/", {"body": text}, "body"),
        (receiver_api, f"{ref}/fail/", {"reason": text}, "reason"),
        (sender_api, f"{ref}/consent/withdraw/", {"reason": text}, "reason"),
    ]
    for client, path, payload, field in posts:
        body = assert_problem(client.post(path, payload, format="json"), 400, "validation-error")
        assert field in body["errors"], (path, body)
        assert text not in json.dumps(body, ensure_ascii=False)  # the value is never echoed
    assert _counts() == before
    assert Referral.objects.get(pk=accepted.pk).version == accepted.version


def test_tab_newline_and_crlf_are_line_breaks_not_junk(sender_api):
    created = sender_api.post(CASES, _case_with(summary="uno\r\ndos\ttres\n"), format="json")
    assert created.status_code == 201, created.content
    case = sender_api.get(f"{API}/cases/{created.json()['id']}/").json()
    assert case["summary"] == "uno\ndos\ttres"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject__nationality": "XXX"}, "subject.nationality"),
        ({"subject__nationality": "ZZZ"}, "subject.nationality"),
        ({"subject__languages": ["xx"]}, "subject.languages"),
        ({"subject__languages": ["es", "qqq"]}, "subject.languages"),
        ({"subject__languages": ["zz-PA"]}, "subject.languages"),
        ({"subject__date_of_birth": "1899-12-31"}, "subject.date_of_birth"),
        ({"subject__date_of_birth": "0001-01-01"}, "subject.date_of_birth"),
        ({"subject__date_of_birth": "9999-12-31"}, "subject.date_of_birth"),
    ],
)
def test_codes_that_do_not_exist_and_implausible_dates_are_400(change, field, sender_api):
    response = sender_api.post(CASES, _case_with(**change), format="json")
    assert_problem(response, 400, "validation-error", errors={field})
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    ("nationality", "languages"),
    [("VEN", ["es"]), ("HTI", ["ht", "fr"]), ("CHN", ["yue", "zh"]), ("PAN", ["es-PA", "guc"]), ("", [])],
)
def test_codes_that_exist_are_accepted(nationality, languages, sender_api):
    body = _case_with(subject__nationality=nationality, subject__languages=languages)
    assert sender_api.post(CASES, body, format="json").status_code == 201


@pytest.mark.parametrize(
    "obtained_at",
    [
        "2026-11-27T10:00:00",  # no time zone
        "2026-11-27T10:00",
        "1899-12-31T23:59:59Z",
        "0001-01-02T00:00:00Z",  # year 1: the printable sheet answered 500 forever
        "1900-01-01T01:00:00+02:00",  # 23:00 on 31 December 1899 in UTC
    ],
)
def test_a_consent_time_without_a_zone_or_before_1900_is_400(obtained_at, sender_api, case_id):
    before = _counts()
    response = sender_api.post(
        REFERRALS, _referral_with(case_id, consent__obtained_at=obtained_at), format="json"
    )
    assert_problem(response, 400, "validation-error", errors={"consent.obtained_at"})
    assert _counts() == before


def test_the_oldest_consent_time_the_rules_admit_is_accepted(sender_api, case_id):
    for obtained_at in ("1900-01-01T00:00:00Z", "1899-12-31T20:00:00-05:00"):
        response = sender_api.post(
            REFERRALS, _referral_with(case_id, consent__obtained_at=obtained_at), format="json"
        )
        assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "raw",
    [
        b'{"summary": "a", "summary": "b", "subject": {"given_name": "Ana"}}',
        b'{"summary": "a", "subject": {"given_name": "Ana", "given_name": "Eva"}}',
        b'{"subject": {"given_name": "Ana", "languages": [{"x": 1, "x": 2}]}}',
    ],
)
def test_a_json_object_repeating_a_key_is_400(raw, sender_api):
    assert_problem(_raw(sender_api, CASES, raw), 400, "validation-error")
    assert Case.objects.count() == 0
