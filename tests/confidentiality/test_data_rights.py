"""Data-subject rights: export everything held on a person (access request) and erase it (crypto-shredding),
through the management commands, checked in the raw rows and through the API."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.chain import GENESIS_HASH, event_hash
from audit.models import AuditEvent
from referrals import crypto, services
from referrals.data_rights import subject_erase
from referrals.models import Case, Consent, Note, Referral, Subject

from . import populate as values
from .conftest import API


def export(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_subject", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def erase(*args, stdin=None) -> str:
    out = io.StringIO()
    kwargs = {"stdin": stdin} if stdin is not None else {}
    call_command("erase_subject", *args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def raw_rows(table: str, where: str, params) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {where}", params)  # noqa: S608
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def db_id(pk):
    return pk.hex if connection.vendor == "sqlite" else pk


def details_of(action: str) -> list[dict]:
    return list(AuditEvent.objects.filter(action=action).values_list("detail", flat=True))


# --- export -------------------------------------------------------------------------------------


def test_export_holds_everything_on_the_person(full_case):
    case = full_case["case"]
    out, _ = export(case.reference)
    data = json.loads(out)
    assert data["format"] == "rcm-subject-export/1"
    assert data["case"]["reference"] == case.reference and data["case"]["summary"] == values.SUMMARY
    subject = data["subject"]
    assert subject["given_name"] == values.SUBJECT["given_name"]
    assert subject["date_of_birth"] == values.SUBJECT["date_of_birth"]
    assert subject["document_number"] == "QZ77812294"  # stored normalized
    assert subject["languages"] == ["es", "en"] and subject["is_minor"] is False
    completed, rejected = data["referrals"]
    assert completed["reason"] == values.REASON and completed["outcome"] == values.OUTCOME
    assert completed["consent"]["details"] == values.CONSENT_DETAILS
    assert completed["consent"]["data_categories"] == ["contact", "documents", "identity", "protection_needs"]
    assert {n["body"] for n in completed["notes"]} == {values.NOTE_SENDER, values.NOTE_RECEIVER}
    assert {n["author_institution"] for n in completed["notes"]} == {"IOM", "DP"}
    assert [e["action"] for e in completed["timeline"]] == ["create", "send", "accept", "start", "complete"]
    assert rejected["status"] == "rejected" and rejected["status_reason"] == values.STATUS_REASON
    # Who touched the file, for the person to know (e.g. the receiver's grants).
    assert {"case.created", "referral.created", "permission.granted"} <= {
        a["action"] for a in data["access_log"]
    }
    assert "DP" in {a["actor_institution"] for a in data["access_log"]}


def test_export_by_id_and_the_audit_event_carries_counts_only(full_case):
    case = full_case["case"]
    by_id = json.loads(export(str(case.pk))[0])
    assert by_id["case"]["id"] == str(case.pk)
    event = AuditEvent.objects.filter(action="subject.exported").get()
    assert event.object_type == "case" and event.object_id == str(case.pk) and event.actor_type == "system"
    assert event.detail == {
        "reference": case.reference,
        "referrals": 2,
        "consents": 2,
        "notes": 2,
        "erased": False,
    }
    assert event.institutions == ",DP,IOM,"  # the receiver's auditors see the export too
    stored = json.dumps(event.detail) + event.actor_label
    assert not [n for n in values.NEEDLES if n.lower() in stored.lower()]


def test_export_to_a_file_readable_by_its_owner_only(full_case, tmp_path):
    target = tmp_path / "export.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    out, err = export(full_case["case"].reference, "--output", str(target))
    assert out == "" and "mode 0600" in err and values.SUMMARY not in err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())["case"]["summary"] == values.SUMMARY


def test_export_of_an_unknown_case_names_nothing(db):
    with pytest.raises(CommandError, match="no case with this id or reference"):
        export("IOM-2026-999999")
    with pytest.raises(CommandError):
        export("00000000-0000-0000-0000-000000000000")


# --- erasure ------------------------------------------------------------------------------------


def test_erasure_needs_confirmation(full_case):
    case = full_case["case"]
    with pytest.raises(CommandError, match="--yes"):
        call_command("erase_subject", case.reference, stdout=io.StringIO())  # stdin is not a terminal
    with pytest.raises(CommandError, match="not confirmed"):
        erase(case.reference, stdin=io.StringIO("IOM-2026-000999\n"))
    assert not Case.objects.get(pk=case.pk).is_erased
    out = erase(case.reference, stdin=io.StringIO(case.reference.lower() + "\n"))
    assert "Type the case reference to confirm" in out and f"erased case {case.reference}" in out
    assert Case.objects.get(pk=case.pk).is_erased


def test_erasure_destroys_the_key_the_ciphertexts_and_the_blind_indexes(full_case):
    case = full_case["case"]
    referral_ids = [db_id(r.pk) for r in (full_case["completed"], full_case["rejected"])]
    assert raw_rows("referrals_subject", "case_id = %s", [db_id(case.pk)])[0]["document_number_index"]
    out = erase(case.reference, "--yes")
    assert "2 referral(s), 2 consent(s) and 2 note(s) kept as metadata" in out
    assert "1 receiver access(es) revoked" in out  # the rejected one was revoked already

    case_row = raw_rows("referrals_case", "id = %s", [db_id(case.pk)])[0]
    assert case_row["wrapped_data_key"] is None and case_row["erased_at"] is not None
    assert case_row["summary"] is None and case_row["reference"] == case.reference
    subject_row = raw_rows("referrals_subject", "case_id = %s", [db_id(case.pk)])[0]
    assert subject_row["document_number_index"] == ""
    personal = [f for f in subject_row if f not in ("id", "case_id", "document_number_index")]
    assert all(subject_row[f] is None for f in personal)
    marks = ",".join(["%s"] * len(referral_ids))
    for row in raw_rows("referrals_referral", f"id IN ({marks})", referral_ids):
        assert row["reason"] is None and row["status_reason"] is None and row["outcome"] is None
        assert row["status"] in ("completed", "rejected") and row["services"]  # metadata stays
    for row in raw_rows("referrals_consent", f"referral_id IN ({marks})", referral_ids):
        assert row["details"] is None and row["data_categories"]
    notes = raw_rows("referrals_note", f"referral_id IN ({marks})", referral_ids)
    assert len(notes) == 2 and all(n["body"] is None for n in notes)

    crypto.forget_cached_keys()
    fresh = Case.objects.get(pk=case.pk)
    assert fresh.summary is None and Subject.objects.get(case=fresh).given_name is None
    with pytest.raises(crypto.DataKeyDestroyed):
        fresh.data_key()


def test_a_backup_of_the_ciphertext_is_useless_without_the_destroyed_key(full_case):
    case = full_case["case"]
    backup = Case.objects.filter(pk=case.pk).values_list("summary", flat=True).get().ciphertext
    subject_erase(case=case)
    crypto.forget_cached_keys()
    # Any data key but the destroyed one: nothing decrypts.
    with pytest.raises(crypto.KeyUnavailable):
        crypto.decrypt_value(crypto.new_data_key(), backup, f"referrals.case.summary:{case.pk}")


def test_after_erasure_the_api_shows_metadata_only(full_case, iom, dp, api_as):
    sender, receiver = api_as(iom), api_as(dp)
    case, completed, rejected = full_case["case"], full_case["completed"], full_case["rejected"]
    subject_erase(case=case)
    body = sender.get(f"{API}/cases/{case.pk}/").json()
    assert body["subject"] is None and body["summary"] is None and body["erased"] is True
    for client in (sender, receiver):
        for referral in (completed, rejected):
            response = client.get(f"{API}/referrals/{referral.pk}/")
            assert response.status_code == 200
            data = response.json()
            assert data["subject"] is None and data["reason"] is None
            assert data["status_reason"] is None and data["outcome"] is None
            stored = Referral.objects.get(pk=referral.pk)
            assert data["status"] == stored.status and data["reference"] == stored.reference
            text = response.content.decode().lower()
            assert not [n for n in values.NEEDLES if n.lower() in text]
    notes = sender.get(f"{API}/referrals/{completed.pk}/notes/").json()["results"]
    assert len(notes) == 2 and all(n["body"] is None for n in notes)
    assert receiver.get(f"{API}/referrals/{completed.pk}/notes/").status_code == 403  # access revoked
    assert sender.get(f"{API}/cases/", {"document_number": "QZ77812294"}).json()["results"] == []


def test_erasure_is_audited_with_counts_and_idempotent(full_case):
    case = full_case["case"]
    first = subject_erase(case=case)
    second = subject_erase(case=case)
    assert first["already_erased"] is False and second == {
        "reference": case.reference,
        "already_erased": True,
    }
    assert "already erased" in erase(case.reference, "--yes")
    events = AuditEvent.objects.filter(action="subject.erased")
    assert events.count() == 1
    event = events.get()
    assert event.detail == {
        "reference": case.reference,
        "trigger": "request",
        "referrals": 2,
        "consents": 2,
        "notes": 2,
        "receivers_revoked": 1,
    }
    assert event.institutions == ",DP,IOM," and event.case_id == str(case.pk)
    revoked = AuditEvent.objects.filter(action="permission.revoked", object_id=str(full_case["completed"].pk))
    assert revoked.exists()
    previous = GENESIS_HASH
    for audit_event in AuditEvent.objects.order_by("sequence"):  # the chain still links and hashes
        assert audit_event.prev_hash == previous and audit_event.hash == event_hash(audit_event)
        previous = audit_event.hash


def test_a_referral_left_open_can_still_be_closed_but_its_text_is_not_stored(
    iom_actor, dp_actor, dp, make_referral
):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "accept")])
    subject_erase(case=referral.case)
    crypto.forget_cached_keys()
    services.referral_transition(
        actor=iom_actor, referral_id=referral.pk, action="cancel", reason="Texto-Nuevo-Qx"
    )
    row = raw_rows("referrals_referral", "id = %s", [db_id(referral.pk)])[0]
    assert row["status"] == "cancelled" and row["status_reason"] is None


def test_export_after_erasure_shows_nothing_personal(full_case):
    case = full_case["case"]
    subject_erase(case=case)
    data = json.loads(export(case.reference)[0])
    assert data["subject"] is None and data["case"]["summary"] is None and data["case"]["erased_at"]
    assert [(r["reason"], r["consent"]["details"]) for r in data["referrals"]] == [(None, None)] * 2
    assert not [n for n in values.NEEDLES if n.lower() in json.dumps(data, ensure_ascii=False).lower()]
    assert AuditEvent.objects.filter(action="subject.exported").get().detail["erased"] is True


def test_unrelated_cases_are_untouched(full_case, iom_actor, make_case):
    other = make_case(iom_actor, given_name="Intacto")
    subject_erase(case=full_case["case"])
    crypto.forget_cached_keys()
    assert Subject.objects.select_related("case").get(case=other).given_name == "Intacto"
    assert Case.objects.get(pk=other.pk).summary == "Resumen"
    assert Referral.objects.filter(case=full_case["case"]).count() == 2
    assert Consent.objects.count() == 2 and Note.objects.count() == 2
    assert Case.objects.get(pk=other.pk).erased_at is None and timezone.now()
