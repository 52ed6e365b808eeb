"""Key rotation: data written under key A, FIELD_ENCRYPTION_KEYS=[B, A], rotate_keys, then [B] alone reads
everything; an interrupted run resumes; counts in the output and the audit, never key material."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from audit.models import AuditEvent
from referrals import crypto
from referrals.management.commands import rotate_keys
from referrals.models import Case, Note, Referral, Subject

from . import populate as values
from .conftest import API, key_text, new_key


def rotate(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def read_everything(case_ids) -> list:
    """Decrypt every personal value of the cases from fresh rows (no cached keys or plaintext)."""
    crypto.forget_cached_keys()
    seen = []
    for case in Case.objects.filter(pk__in=case_ids):
        seen.append(case.summary)
        subject = Subject.objects.select_related("case").get(case=case)
        seen += [subject.given_name, subject.document_number, subject.date_of_birth]
        for referral in Referral.objects.select_related("case").filter(case=case):
            seen += [referral.reason, referral.status_reason, referral.outcome, referral.consent.details]
        seen += [n.body for n in Note.objects.select_related("referral__case").filter(referral__case=case)]
    return seen


@pytest.fixture
def key_a():
    return new_key()


@pytest.fixture
def key_b():
    return new_key()


def test_rotation_moves_every_data_key_then_the_old_key_can_be_dropped(
    key_a, key_b, full_case, iom_actor, make_case
):
    dev_keys = list(crypto.settings.FIELD_ENCRYPTION_KEYS)
    # Everything written under A alone.
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        ids = [make_case(iom_actor, given_name=f"Rotación {i}").pk for i in range(6)]
    # The full case (dev key) too: the keyring then holds B (active), A and the dev key.
    ids.append(full_case["case"].pk)
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a, *dev_keys]):
        before = read_everything(ids)
    assert values.SUMMARY in before and values.OUTCOME in before and values.NOTE_RECEIVER in before

    # B alone cannot read A's data before the rotation.
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b]), pytest.raises(crypto.KeyUnavailable):
        read_everything(ids)

    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a, *dev_keys]):
        out, err = rotate("--batch-size", "3")
        assert f"moved {len(ids)} data key(s) to the active key; 0 already on it" in out
        assert "left on older keys: 0" in out
        assert f"active key {crypto.key_fingerprint(key_b)}" in out
        assert "data keys: batch 1: seen 3" in err and "batch 3: seen 7" in err
        again, _ = rotate()
        assert f"moved 0 data key(s) to the active key; {len(ids)} already on it" in again

    for text in (out, err):
        for key in (key_a, key_b, *dev_keys):
            assert key_text(key) not in text and key.hex() not in text

    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b]):
        after = read_everything(ids)
        assert after == before
        wrapped = Case.objects.filter(pk__in=ids).values_list("wrapped_data_key", flat=True)
        assert {crypto.wrapped_key_id(w) for w in wrapped} == {crypto.kek_id(key_b)}

    events = AuditEvent.objects.filter(action="keys.rotated").order_by("sequence")
    assert [e.detail["moved"] for e in events] == [3, 3, 1]
    assert {e.detail["to_key"] for e in events} == {crypto.key_fingerprint(key_b)}
    assert all(set(e.detail) == {"moved", "to_key"} for e in events)
    # Recorded by the core (referrals.key_rotation) with a system actor, not by the command.
    assert {(e.actor_type, e.actor_label) for e in events} == {("system", "manage.py rotate_keys")}


def test_ciphertexts_are_not_rewritten_only_the_wrapped_keys(key_a, key_b, iom_actor, make_case):
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        case = make_case(iom_actor)
    before = Subject.objects.filter(case=case).values_list("given_name", flat=True).get()
    wrapped_before = bytes(Case.objects.values_list("wrapped_data_key", flat=True).get(pk=case.pk))
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a]):
        rotate()
    assert Subject.objects.filter(case=case).values_list("given_name", flat=True).get() == before
    assert bytes(Case.objects.values_list("wrapped_data_key", flat=True).get(pk=case.pk)) != wrapped_before


def test_interrupted_rotation_resumes(key_a, key_b, iom_actor, make_case, monkeypatch):
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        ids = [make_case(iom_actor).pk for _ in range(7)]
    real = rotate_keys.rotate_batch
    calls = {"n": 0}

    def crash_on_third_batch(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C, or a killed process
        return real(**kwargs)

    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a]):
        monkeypatch.setattr(rotate_keys, "rotate_batch", crash_on_third_batch)
        with pytest.raises(KeyboardInterrupt):
            rotate("--batch-size", "2")
        active = crypto.kek_id(key_b)
        moved = [
            crypto.wrapped_key_id(w) == active
            for w in Case.objects.values_list("wrapped_data_key", flat=True)
        ]
        assert sum(moved) == 4  # two committed batches of two
        monkeypatch.setattr(rotate_keys, "rotate_batch", real)
        out, _ = rotate("--batch-size", "2")
        assert "moved 3 data key(s) to the active key; 4 already on it" in out
        assert "left on older keys: 0" in out
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b]):
        crypto.forget_cached_keys()
        assert all(Case.objects.get(pk=pk).summary == "Resumen" for pk in ids)


def test_dry_run_changes_nothing(key_a, key_b, iom_actor, make_case):
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        make_case(iom_actor)
        make_case(iom_actor)
    before = sorted(bytes(w) for w in Case.objects.values_list("wrapped_data_key", flat=True))
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a]):
        out, _ = rotate("--dry-run")
    assert "dry run: would move 2 data key(s)" in out and "left on older keys: 2" in out
    assert sorted(bytes(w) for w in Case.objects.values_list("wrapped_data_key", flat=True)) == before
    assert not AuditEvent.objects.filter(action="keys.rotated").exists()


def test_a_missing_old_key_is_reported_and_the_rest_still_moves(key_a, key_b, iom_actor, make_case):
    lost = new_key()
    with override_settings(FIELD_ENCRYPTION_KEYS=[lost]):
        make_case(iom_actor)
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        make_case(iom_actor)
    out = io.StringIO()
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a]):
        with pytest.raises(CommandError, match="1 data key"):
            call_command("rotate_keys", stdout=out, stderr=io.StringIO())
        assert "moved 1 data key(s) to the active key; 0 already on it; 1 not unwrappable" in out.getvalue()
        assert "left on older keys: 1" in out.getvalue()
        with pytest.raises(CommandError):  # still reported on the next run, nothing else to move
            call_command("rotate_keys", stdout=out, stderr=io.StringIO())
        assert "moved 0 data key(s) to the active key; 1 already on it; 1 not unwrappable" in out.getvalue()


def test_erased_cases_have_nothing_to_rotate(key_a, key_b, iom_actor, make_case):
    from referrals.data_rights import subject_erase

    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        subject_erase(case=make_case(iom_actor))
        make_case(iom_actor)
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a]):
        out, _ = rotate()
    assert "moved 1 data key(s)" in out and "1 case(s) with a data key" in out


def test_reindex_after_a_new_blind_index_key(iom, api_as, full_case):
    client = api_as(iom)
    new_blind = new_key()
    with override_settings(BLIND_INDEX_KEY=new_blind):
        assert client.get(f"{API}/cases/?document_number=QZ77812294").json()["results"] == []
        out, _ = rotate("--reindex")
        assert "reindexed 1 subject(s) of 1" in out
        found = client.get(f"{API}/cases/?document_number=qz 7781-2294").json()["results"]
        assert [c["id"] for c in found] == [str(full_case["case"].pk)]


def test_the_api_reads_rotated_data_with_only_the_new_key(key_a, key_b, iom, api_as, iom_actor, make_case):
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_a]):
        case = make_case(iom_actor, family_name="Rotadoxq")
    client = api_as(iom)
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b]):
        assert client.get(f"{API}/cases/{case.pk}/").status_code == 503
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b, key_a]):
        rotate()
    with override_settings(FIELD_ENCRYPTION_KEYS=[key_b]):
        crypto.forget_cached_keys()
        response = client.get(f"{API}/cases/{case.pk}/")
        assert response.status_code == 200 and response.json()["subject"]["family_name"] == "Rotadoxq"


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError):
        rotate("--batch-size", "0")
