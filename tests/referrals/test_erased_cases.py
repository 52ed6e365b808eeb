"""An erased case takes no new personal data: a change of the subject or summary, a note or a new referral
is refused with 409 ``case-erased`` (nothing written, nothing audited); moving a referral on still works."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from referrals import services
from referrals.data_rights import subject_erase
from referrals.errors import CaseErased
from referrals.models import Case, Note, Referral, Subject
from tests.api.helpers import API, assert_problem, build_referral, consent


@pytest.fixture
def accepted(iom, dp, iom_actor, dp_actor):
    return build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="accepted")


def _erase(case) -> None:
    subject_erase(case=Case.objects.get(pk=case.pk))


def _state(referral):
    referral = Referral.objects.get(pk=referral.pk)
    return (
        Note.objects.filter(referral=referral).count(),
        referral.version,
        AuditEvent.objects.count(),
    )


def test_a_note_on_an_erased_case_is_refused(accepted, iom_actor):
    _erase(accepted.case)
    before = _state(accepted)
    with pytest.raises(CaseErased) as caught:
        services.note_create(actor=iom_actor, referral_id=accepted.pk, body="Seguimiento")
    assert (caught.value.status_code, caught.value.slug) == (409, "case-erased")
    assert _state(accepted) == before


def test_the_receiver_whose_access_was_revoked_by_the_erasure_gets_its_403_first(accepted, dp_actor):
    """The contract's order: side/permission (403) before status (409)."""
    _erase(accepted.case)
    with pytest.raises(Exception) as caught:
        services.note_create(actor=dp_actor, referral_id=accepted.pk, body="Seguimiento")
    assert (caught.value.status_code, caught.value.slug) == (403, "permission-denied")


def test_a_change_to_an_erased_case_is_refused(accepted, iom_actor):
    case = accepted.case
    _erase(case)
    before = (Case.objects.get(pk=case.pk).updated_at, AuditEvent.objects.count())
    for change in ({"summary": "Resumen nuevo"}, {"subject": {"phone": "+507 6000-0000"}}):
        with pytest.raises(CaseErased):
            services.case_update(actor=iom_actor, case=case, **change)
    assert (Case.objects.get(pk=case.pk).updated_at, AuditEvent.objects.count()) == before
    subject = Subject.objects.select_related("case").get(case=case)
    assert subject.phone is None and subject.document_number_index == ""


def test_a_case_not_erased_can_still_be_changed_and_noted(accepted, iom_actor):
    services.case_update(actor=iom_actor, case=accepted.case, summary="Resumen nuevo")
    services.note_create(actor=iom_actor, referral_id=accepted.pk, body="Seguimiento")
    assert Note.objects.filter(referral=accepted).count() == 1


def test_a_new_referral_of_an_erased_case_is_refused_alike(accepted, iom_actor, third):
    _erase(accepted.case)
    with pytest.raises(CaseErased):
        services.referral_create(
            actor=iom_actor,
            case=Case.objects.get(pk=accepted.case_id),
            to_institution=third,
            services=["legal_assistance"],
            urgency="normal",
            reason="",
            consent=consent(),
        )


def test_the_api_answers_a_note_on_an_erased_case_with_409_problem(accepted, iom, api_as):
    _erase(accepted.case)
    response = api_as(iom).post(
        f"{API}/referrals/{accepted.pk}/notes/", {"body": "Seguimiento"}, format="json"
    )
    body = assert_problem(response, 409, "case-erased")
    assert body["title"] and "Seguimiento" not in response.content.decode()
    assert not Note.objects.filter(referral=accepted).exists()


def test_a_referral_of_an_erased_case_can_still_be_moved_on(accepted, iom_actor):
    _erase(accepted.case)
    referral = services.referral_transition(
        actor=iom_actor, referral_id=accepted.pk, action="cancel", reason="Cierre"
    )
    assert referral.status == "cancelled"
