"""Service-layer rules that the API does not show directly: who is told about what in the audit trail,
which grants exist after each step, and that reads change nothing."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from referrals import services
from referrals.models import ReferralGroupObjectPermission, ReferralUserObjectPermission
from tests.api.helpers import build_referral


def _events_naming(referral, code):
    return AuditEvent.objects.filter(object_id=str(referral.pk), institutions__contains=f",{code},")


@pytest.mark.parametrize("action", ["cancel", "void"])
def test_a_referral_never_sent_is_never_shown_to_the_receivers_auditors(
    action, iom, dp, iom_actor, dp_actor, iom_supervisor_actor
):
    """Cancelling or voiding a draft (and voiding it after cancelling) concerns the sender only."""
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="draft")
    actor = iom_supervisor_actor if action == "void" else iom_actor
    services.referral_transition(
        actor=actor, referral_id=referral.pk, action=action, reason="Error de registro"
    )
    if action == "cancel":
        services.referral_transition(
            actor=iom_supervisor_actor, referral_id=referral.pk, action="void", reason="Duplicado"
        )
    assert not _events_naming(referral, "DP").exists()
    assert not ReferralGroupObjectPermission.objects.filter(content_object=referral).exists()
    referral.refresh_from_db()
    assert referral.receiver_access_revoked_at is None  # there was never any access to revoke


def test_a_sent_referral_is_shared_with_the_receivers_auditors(iom, dp, iom_actor, dp_actor):
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested")
    actions = set(_events_naming(referral, "DP").values_list("action", flat=True))
    assert {"referral.transitioned", "permission.granted"} <= actions


def test_grants_follow_the_lifecycle(iom, dp, iom_actor, dp_actor):
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested")
    groups = ReferralGroupObjectPermission.objects.filter(content_object=referral)
    granted = set(groups.values_list("group__name", "permission__codename"))
    assert granted == {
        (f"DP:{kind}", perm)
        for kind in ("intake", "supervisors", "service")
        for perm in ("view_referral", "change_referral", "view_referral_personal")
    }
    services.referral_transition(
        actor=dp_actor, referral_id=referral.pk, action="accept", assign_to_actor=True
    )
    users = ReferralUserObjectPermission.objects.filter(content_object=referral)
    assert set(users.values_list("user__username", "permission__codename")) == {
        (dp_actor.user.username, perm)
        for perm in ("view_referral", "change_referral", "view_referral_personal")
    }
    services.consent_withdraw(actor=iom_actor, referral_id=referral.pk, reason="Retiro")
    # revocation keeps view_referral only, for groups and the assignee alike
    assert set(groups.values_list("permission__codename", flat=True)) == {"view_referral"}
    assert set(users.values_list("permission__codename", flat=True)) == {"view_referral"}


def test_granting_twice_is_harmless(iom, dp, iom_actor, dp_actor):
    from referrals import permissions

    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested")
    before = ReferralGroupObjectPermission.objects.filter(content_object=referral).count()
    permissions.grant_receiver(referral=referral, actor=iom_actor)
    assert ReferralGroupObjectPermission.objects.filter(content_object=referral).count() == before


def test_reads_change_nothing(iom, dp, iom_actor, dp_actor, api_as):
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested")
    client = api_as(dp)
    for path in ("", "events/", "notes/"):
        assert client.get(f"/api/v1/referrals/{referral.pk}/{path}").status_code == 200
    after = type(referral).objects.get(pk=referral.pk)
    assert (after.status, after.version, after.updated_at) == (
        referral.status,
        referral.version,
        referral.updated_at,
    )


def test_a_collaborator_gets_need_to_know_access(iom, dp, iom_actor, dp_actor, make_user, user_api):
    colleague = make_user(iom)
    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested")
    client = user_api(colleague)
    assert client.get(f"/api/v1/cases/{referral.case_id}/").status_code == 404
    assert client.get(f"/api/v1/referrals/{referral.pk}/").status_code == 404
    services.case_add_collaborator(actor=iom_actor, case=referral.case, user=colleague)
    assert client.get(f"/api/v1/cases/{referral.case_id}/").status_code == 200
    assert client.get(f"/api/v1/referrals/{referral.pk}/").json()["subject"]["given_name"] == "Zuleikaxq"
    assert [c["id"] for c in client.get("/api/v1/cases/").json()["results"]] == [str(referral.case_id)]


def test_a_collaborator_must_belong_to_the_case_institution(iom, dp, iom_actor, dp_actor, make_user):
    from plumbing.problems import ProblemError

    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested")
    with pytest.raises(ProblemError):
        services.case_add_collaborator(actor=iom_actor, case=referral.case, user=make_user(dp))
    with pytest.raises(ProblemError):
        services.case_add_collaborator(actor=dp_actor, case=referral.case, user=make_user(iom))


def test_a_colleague_without_access_can_neither_share_nor_change_a_case(
    iom, dp, iom_actor, dp_actor, make_user
):
    """Need-to-know holds in the services too, not only in the views that call them."""
    from accounts.actor import actor_for_user
    from referrals.errors import NotVisible

    referral = build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="requested")
    colleague = make_user(iom)
    outsider = actor_for_user(colleague)
    with pytest.raises(NotVisible):
        services.case_add_collaborator(actor=outsider, case=referral.case, user=colleague)
    with pytest.raises(NotVisible):
        services.case_update(actor=outsider, case=referral.case, summary="cambiado")
    with pytest.raises(NotVisible):
        services.case_update(actor=dp_actor, case=referral.case, summary="cambiado")
    assert not referral.case.collaborators.exists()
    services.case_update(actor=iom_actor, case=referral.case, summary="Resumen nuevo")
    referral.case.refresh_from_db()
    assert referral.case.summary == "Resumen nuevo"
