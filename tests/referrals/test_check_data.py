"""``manage.py check_data`` (issue 22): stored records that break today's input rules, listed by reference
and field name — never by value — with progress, and exit status 1 when something is found."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import CommandError, call_command

from referrals import services
from referrals.data_rights import subject_erase
from referrals.models import Consent, Note, Referral, Subject

pytestmark = pytest.mark.django_db

JUNK_NAME = "a\u0001\u001b[31mJUNKNAME"
JUNK_REASON = "\u202eJUNKREASON\u202c"
JUNK_NOTE = "JUNKNOTE\u0085"


def _run(*args) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_data", *args, stdout=out, stderr=err)
    except CommandError as failed:
        err.write(str(failed))
        return out.getvalue(), err.getvalue(), failed.returncode
    return out.getvalue(), err.getvalue(), 0


@pytest.fixture
def junk(iom_actor, dp, make_referral):
    """A referral whose stored data was written before today's rules (bypassing the services)."""
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    services.note_create(actor=iom_actor, referral_id=referral.pk, body="Nota limpia")
    subject = Subject.objects.get(case=referral.case)
    subject.nationality, subject.given_name, subject.languages = "XXX", JUNK_NAME, ["es", "xx"]
    subject.save()
    stored = Referral.objects.get(pk=referral.pk)
    stored.reason = JUNK_REASON
    stored.save(update_fields=["reason"])
    Consent.objects.filter(referral=referral).update(
        obtained_at=datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)
    )
    note = Note.objects.get(referral=referral)
    note.body = JUNK_NOTE
    note.save(update_fields=["body"])
    return Referral.objects.get(pk=referral.pk), note


def test_a_clean_database_exits_0(iom_actor, dp, make_referral):
    make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    out, err, status = _run()
    assert status == 0
    assert "no stored record breaks today's rules" in out
    assert "checked 1/1 cases" in err and "checked 1/1 referrals" in err


def test_junk_is_listed_by_reference_and_field_never_by_value(junk):
    referral, note = junk
    out, err, status = _run()
    assert status == 1
    lines = set(out.splitlines())
    case_ref = referral.case.reference
    assert {
        f"case {case_ref} subject.given_name",
        f"case {case_ref} subject.nationality",
        f"case {case_ref} subject.languages",
        f"referral {referral.reference} reason",
        f"referral {referral.reference} consent.obtained_at",
        f"note {referral.reference}/{note.pk} body",
    } == lines
    for value in ("JUNKNAME", "JUNKREASON", "JUNKNOTE", "XXX", "0001-01", "\u202e", "\u001b"):
        assert value not in out + err
    assert "checked 1/1 notes" in err


def test_quiet_has_no_progress(junk):
    _out, err, status = _run("--quiet")
    assert status == 1 and "checked" not in err


def test_erased_cases_are_not_checked(junk):
    referral, _note = junk
    subject_erase(case=referral.case)
    out, _err, status = _run()
    assert status == 0, out


def test_the_demo_data_breaks_no_rule(db):
    """seed_demo writes through the services: what it stores passes today's rules."""
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    out, err, status = _run("--quiet")
    assert status == 0, out
    assert err == ""
