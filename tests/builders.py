"""The one referral builder of the test suites: a case and a referral made through the real services,
moved along a path of lifecycle actions."""

from __future__ import annotations

from django.utils import timezone

from referrals import services
from tests.factories import subject_data


def consent(categories=("identity",), given=True) -> dict:
    """A consent record as the services take it."""
    return {
        "given": given,
        "given_by": "self",
        "method": "verbal",
        "obtained_at": timezone.now(),
        "data_categories": list(categories),
    }


def referral_through_services(
    *,
    sender,
    to,
    path=(),
    case=None,
    categories=("identity",),
    urgency="normal",
    requested=("legal_assistance",),
    reason="Motivo confidencial",
    subject=None,
    summary="Resumen",
    consent_given=True,
):
    """A referral from ``sender``'s institution to ``to``, moved along ``path``: (actor, action[, text])."""
    if case is None:
        case = services.case_create(actor=sender, subject=subject or subject_data(), summary=summary)
    referral = services.referral_create(
        actor=sender,
        case=case,
        to_institution=to,
        services=list(requested),
        urgency=urgency,
        reason=reason,
        consent=consent(categories, given=consent_given),
    )
    for step_actor, action, *text in path:
        services.referral_transition(
            actor=step_actor,
            referral_id=referral.pk,
            action=action,
            reason=text[0] if text and action != "complete" else None,
            outcome=text[0] if text and action == "complete" else None,
        )
    referral.refresh_from_db()
    return referral
