"""Blind indexes: exact search by document number within the caller's institution, collisions filtered by
decrypt-and-compare, the number never stored in clear.

Possible duplicates (keyed matching, every door): tests/matching/test_duplicates.py."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection

from audit.models import AuditEvent
from referrals import crypto
from referrals.models import Subject
from tests.factories import subject_json

from .conftest import API


def search(client, number):
    response = client.get(f"{API}/cases/", {"document_number": number})
    assert response.status_code == 200, response.content[:300]
    return [c["reference"] for c in response.json()["results"]]


def create(client, **subject):
    response = client.post(f"{API}/cases/", {"subject": subject_json(**subject)}, format="json")
    assert response.status_code == 201, response.content[:300]
    return response.json()


def test_normalization():
    assert crypto.normalize_document_number(" v-12 345-678 ") == "V12345678"
    assert crypto.normalize_document_number("ab\t-cd\n") == "ABCD"
    assert crypto.blind_index("document_number", "") == ""
    # Per-field keys: the same value indexes differently in two fields.
    assert crypto.blind_index("document_number", "X1") != crypto.blind_index("phone", "X1")
    assert len(crypto.blind_index("document_number", "X1")) == crypto.BLIND_INDEX_BYTES * 2


def test_the_index_key_derivation_is_fixed(settings):
    """Known answers: ``derive_index_key`` (public, used by the blind indexes and by matching) derives what
    the stored indexes were computed with — HKDF-SHA256, info ``blind-index:<label>``. A change here would
    orphan every stored index."""
    from matching import encoding

    root = bytes(range(32))
    assert crypto.derive_index_key("document_number", root).hex() == (
        "0b6cb4d420e0bf73abaf62ea90e0d7aedeefbeae2e8ca0a22a37ad1287bcfc94"
    )
    assert crypto.derive_index_key("match:bloom", root).hex() == (
        "1eab8af893077c166a561fd472956a47c636829aa13cc788187938eb00d69589"
    )
    settings.BLIND_INDEX_KEY = root
    assert crypto.blind_index("document_number", "V12345678") == "1f2f4080"
    assert encoding.key_for("bloom") == crypto.derive_index_key("match:bloom", root)


@pytest.mark.parametrize("query", ["PA-4471 882", "pa4471882", " pa-4471-882 ", "PA 4471 882"])
def test_search_finds_the_case_whatever_the_spacing_and_case(iom, api_as, query):
    client = api_as(iom)
    case = create(client, document_number="pa-4471 882")
    create(client, document_number="PA-4471-883")
    assert search(client, query) == [case["reference"]]


def test_search_stays_within_the_callers_institution(iom, dp, third, api_as):
    iom_client, dp_client = api_as(iom), api_as(dp)
    iom_case = create(iom_client, document_number="SAME-NUMBER-1")
    dp_case = create(dp_client, document_number="SAME-NUMBER-1")
    assert search(iom_client, "SAME-NUMBER-1") == [iom_case["reference"]]
    assert search(dp_client, "SAME-NUMBER-1") == [dp_case["reference"]]
    assert search(api_as(third), "SAME-NUMBER-1") == []


def test_search_respects_need_to_know_inside_the_institution(iom, iom_actor, make_user, user_api, make_case):
    case = make_case(iom_actor, document_number="NTK-0001")
    owner, colleague = user_api(iom_actor.user), user_api(make_user(iom, username="iom.other"))
    assert search(owner, "NTK-0001") == [case.reference]
    assert search(colleague, "NTK-0001") == []


def test_erased_cases_are_not_found(iom, api_as, iom_actor, make_case):
    from referrals.data_rights import subject_erase

    case = make_case(iom_actor, document_number="GONE-123")
    client = api_as(iom)
    assert search(client, "GONE-123") == [case.reference]
    subject_erase(case=case)
    assert search(client, "GONE-123") == []


def _colliding_numbers(prefix="COL") -> tuple[str, str]:
    """Two different numbers with the same (1-byte) blind index."""
    seen = {}
    for n in itertools.count():
        number = f"{prefix}{n:05d}"
        index = crypto.blind_index("document_number", number)
        if index in seen:
            return seen[index], number
        seen[index] = number


def test_collisions_are_filtered_by_decrypt_and_compare(iom, api_as, monkeypatch):
    monkeypatch.setattr(crypto, "BLIND_INDEX_BYTES", 1)  # 256 buckets: collisions are easy to make
    first, second = _colliding_numbers()
    client = api_as(iom)
    case_first = create(client, document_number=first)
    case_second = create(client, document_number=second)
    indexes = set(Subject.objects.values_list("document_number_index", flat=True))
    assert len(indexes) == 1  # both rows share the index: the database returns both candidates
    assert search(client, first) == [case_first["reference"]]
    assert search(client, second) == [case_second["reference"]]
    event = AuditEvent.objects.filter(action="case.searched").order_by("-sequence").first()
    assert event.detail == {"by": "document_number", "matches": 1}


def test_the_number_is_never_stored_in_clear(iom, api_as):
    client = api_as(iom)
    create(client, document_number="CLEAR-99881")
    search(client, "CLEAR-99881")
    with connection.cursor() as cursor:
        cursor.execute("SELECT document_number, document_number_index FROM referrals_subject")
        stored, index = cursor.fetchone()
        cursor.execute("SELECT detail FROM audit_auditevent")
        details = " ".join(str(row[0]) for row in cursor.fetchall())
    assert stored.startswith("e1:") and "99881" not in stored
    assert index == crypto.blind_index("document_number", "CLEAR99881") and "99881" not in index
    assert "99881" not in details


def test_search_input_is_bounded(iom, api_as):
    response = api_as(iom).get(f"{API}/cases/", {"document_number": "X" * 65})
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/validation-error"
