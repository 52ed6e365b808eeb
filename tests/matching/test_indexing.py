"""The keyed indexes follow the case: created and updated with it, gone on erasure, backfilled for old cases
(resumable, with progress), recomputed after a change of BLIND_INDEX_KEY; nothing in clear, nothing under
an unkeyed hash."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import os
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from matching import encoding, matcher
from matching.indexing import reindex_batch
from matching.models import MatchProfile, MatchToken
from referrals import services
from referrals.data_rights import subject_erase

PERSON = {
    "given_name": "Zebulonio Ñandú",
    "family_name": "Quixmarrow-Ybarrondo",
    "date_of_birth": datetime.date(1971, 7, 13),
    "document_type": "passport",
    "document_number": "qz-7781 2294",
}


@pytest.fixture
def actor(iom, service_actor):
    return service_actor(iom)


@pytest.fixture
def case(actor, make_case):
    return make_case(actor, **PERSON)


def _find(actor, **terms):
    return [m.case_id for m in matcher.find_matches(actor, **terms) if m.probable]


def test_created_cases_are_indexed(actor, case):
    assert MatchProfile.objects.filter(case=case).count() == 1
    assert MatchToken.objects.filter(case=case).count() >= 5
    assert _find(
        actor,
        given_name="Zebulonio",
        family_name="Quixmarrow Ybarrondo",
        date_of_birth=PERSON["date_of_birth"],
    ) == [case.pk]


def test_updates_reindex(actor, case):
    services.case_update(actor=actor, case=case, subject={"family_name": "Altamirano"})
    assert _find(
        actor, given_name="Zebulonio Ñandú", family_name="Altamirano", date_of_birth=PERSON["date_of_birth"]
    ) == [case.pk]
    old = _find(
        actor, given_name="Zebulonio", family_name="Quixmarrow", date_of_birth=datetime.date(1960, 1, 2)
    )
    assert old == []


def test_erasure_removes_every_token(actor, case):
    subject_erase(case=case)
    assert not MatchToken.objects.filter(case=case).exists()
    assert not MatchProfile.objects.filter(case=case).exists()
    assert _find(actor, document_number=PERSON["document_number"]) == []


def _forget_index():
    MatchToken.objects.all().delete()
    MatchProfile.objects.all().delete()


def test_backfill_indexes_existing_cases_with_progress(actor, make_case):
    cases = [make_case(actor, **dict(PERSON, document_number=f"QZ{i}")) for i in range(5)]
    _forget_index()
    out, err = io.StringIO(), io.StringIO()
    call_command("match_backfill", "--batch-size", "2", stdout=out, stderr=err)
    assert "5 case(s) missing or stale" in out.getvalue()
    assert "indexed 5 case(s) of 5" in out.getvalue()
    progress = err.getvalue().splitlines()
    assert len(progress) == 3 and progress[-1].startswith("matching indexes: batch 3: seen 5, indexed 5")
    assert MatchProfile.objects.count() == 5
    assert _find(actor, document_number="QZ3") == [cases[3].pk]
    for text in (out.getvalue(), err.getvalue()):
        assert "Zebulonio" not in text and "QZ3" not in text


def test_backfill_is_resumable(actor, make_case):
    for i in range(4):
        make_case(actor, **dict(PERSON, document_number=f"QZ{i}"))
    _forget_index()
    after, counts = reindex_batch(after=None, batch_size=2)  # interrupted after the first batch
    assert counts["indexed"] == 2 and MatchProfile.objects.count() == 2
    out = io.StringIO()
    call_command("match_backfill", stdout=out, stderr=io.StringIO())
    assert "2 case(s) missing or stale" in out.getvalue()
    assert "indexed 2 case(s) of 4; 2 already up to date" in out.getvalue()
    out = io.StringIO()
    call_command("match_backfill", stdout=out, stderr=io.StringIO())
    assert "indexed 0 case(s) of 4; 4 already up to date" in out.getvalue()


def test_backfill_skips_erased_cases(actor, case, make_case):
    other = make_case(actor, **PERSON)
    subject_erase(case=case)
    _forget_index()
    call_command("match_backfill", stdout=io.StringIO(), stderr=io.StringIO())
    assert list(MatchProfile.objects.values_list("case_id", flat=True)) == [other.pk]


def test_a_new_blind_index_key_is_followed_by_rotate_keys_reindex(actor, case, settings):
    old_tokens = set(MatchToken.objects.values_list("token", flat=True))
    settings.BLIND_INDEX_KEY = os.urandom(32)
    # Under the new key, the old indexes match nothing…
    assert _find(actor, document_number=PERSON["document_number"]) == []
    out = io.StringIO()
    call_command("rotate_keys", "--reindex", stdout=out, stderr=io.StringIO())
    assert "recomputed the matching indexes of 1 case(s) of 1" in out.getvalue()
    # …and after the reindex they are all new, and found again.
    assert not old_tokens & set(MatchToken.objects.values_list("token", flat=True))
    assert _find(actor, document_number=PERSON["document_number"]) == [case.pk]
    assert MatchProfile.objects.get(case=case).key_version == encoding.key_version()


def _unkeyed_forms(text: str) -> list[str]:
    """What an unkeyed hash of a value would look like: hex and base64 of common digests."""
    forms = []
    for value in {text, text.lower(), text.upper()}:
        for algorithm in ("md5", "sha1", "sha256"):
            digest = hashlib.new(algorithm, value.encode()).digest()
            forms += [digest.hex()[:8], base64.b64encode(digest).decode()[:8]]
    return forms


def test_the_matching_tables_hold_nothing_in_clear_nor_under_an_unkeyed_hash(actor, case):
    plain = ["zebulonio", "nandu", "quixmarrow", "ybarrondo", "1971-07-13", "1971", "QZ77812294", "77812294"]
    phonetic = [encoding.spanish_code(t) for t in ("zebulonio", "quixmarrow", "ybarrondo")]
    phonetic += [encoding.nysiis(t) for t in ("zebulonio", "quixmarrow", "ybarrondo")]
    needles = plain + phonetic
    hashed = [f for value in plain + phonetic for f in _unkeyed_forms(value)]
    with connection.cursor() as cursor:
        rows = []
        for table in ("matching_matchtoken", "matching_matchprofile"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            rows += [" ".join(str(v) for v in row) for row in cursor.fetchall()]
    blob = "\n".join(rows)
    assert rows
    for needle in needles:
        assert needle.lower() not in blob.lower(), needle
    for form in hashed:
        assert form not in blob
    # The profile is sealed (AES-GCM, bound to its case); inside, integers only (keyed, truncated).
    profile = MatchProfile.objects.get(case=case)
    assert profile.sealed.startswith("e1:")
    flat = json.dumps(encoding.open_profile(case.pk, profile.sealed))
    assert all(c in '0123456789-[], :{}"nudyscogiatl' for c in flat), flat
    with pytest.raises(encoding.crypto.KeyUnavailable):
        encoding.open_profile(uuid.uuid4(), profile.sealed)  # moved to another case: refused


def test_tokens_depend_on_the_key(settings):
    first = encoding.keyed("name_exact", "jose")
    settings.BLIND_INDEX_KEY = os.urandom(32)
    assert encoding.keyed("name_exact", "jose") != first
    # and on the index: the same value under two indexes gives unrelated tokens
    assert encoding.keyed("name_exact", "jose") != encoding.keyed("name_sp", "jose")
