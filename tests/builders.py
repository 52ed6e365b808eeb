"""The one referral builder of the test suites: a case and a referral made through the real services,
moved along a path of lifecycle actions; and the one request body of a referral for the API."""

from __future__ import annotations

from django.utils import timezone

from referrals import services
from referrals.choices import Status
from tests.factories import subject_data

#: One path of (side, action[, text]) per status, from a fresh draft. ``side`` is "sender", "receiver"
#: or "supervisor" (who voids).
PATH_TO = {
    Status.DRAFT: [],
    Status.REQUESTED: [("sender", "send")],
    Status.RECEIVED: [("sender", "send"), ("receiver", "receive")],
    Status.ACCEPTED: [("sender", "send"), ("receiver", "accept")],
    Status.REJECTED: [("sender", "send"), ("receiver", "reject", "MOTIVO-RECHAZO-SECRETO")],
    Status.IN_PROGRESS: [("sender", "send"), ("receiver", "accept"), ("receiver", "start")],
    Status.ON_HOLD: [
        ("sender", "send"),
        ("receiver", "accept"),
        ("receiver", "start"),
        ("receiver", "hold", "ESPERA-SECRETA"),
    ],
    Status.COMPLETED: [
        ("sender", "send"),
        ("receiver", "accept"),
        ("receiver", "start"),
        ("receiver", "complete", "RESULTADO-SECRETO"),
    ],
    Status.FAILED: [("sender", "send"), ("receiver", "accept"), ("receiver", "fail", "FALLO-SECRETO")],
    Status.CANCELLED: [("sender", "send"), ("sender", "cancel", "CANCELACION-SECRETA")],
    Status.ENTERED_IN_ERROR: [("sender", "send"), ("supervisor", "void", "ANULACION-SECRETA")],
}


def path_to(status, *, sender, receiver, supervisor=None) -> list[tuple]:
    """The path of ``(actor, action[, text])`` that moves a fresh draft to ``status``."""
    actors = {"sender": sender, "receiver": receiver, "supervisor": supervisor or sender}
    return [(actors[side], action, *text) for side, action, *text in PATH_TO[Status(status)]]


def consent(categories=("identity",), given=True, **fields) -> dict:
    """A consent record as the services take it (``fields``: e.g. ``method``, ``details``)."""
    return {
        "given": given,
        "given_by": "self",
        "method": "verbal",
        "obtained_at": timezone.now(),
        "data_categories": list(categories),
        **fields,
    }


def move(referral, path, *, assign=()) -> None:
    """Apply ``path``: (actor, action[, text]) through the services; the text is the outcome of
    ``complete`` and the reason of any other action. ``assign``: the actions taken with
    ``assign_to_actor`` (the acting caseworker becomes the assignee)."""
    for step_actor, action, *text in path:
        services.referral_transition(
            actor=step_actor,
            referral_id=referral.pk,
            action=action,
            reason=text[0] if text and action != "complete" else None,
            outcome=text[0] if text and action == "complete" else None,
            assign_to_actor=action in assign,
        )


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
    consent_fields=None,
    assign=(),
    province="",
    to_office=None,
):
    """A referral from ``sender``'s institution to ``to``, moved along ``path``: (actor, action[, text]).

    ``consent_fields``: more fields of the consent record (``method``, ``details``); ``assign``: see ``move``;
    ``province`` and ``to_office``: where the person needs help and the receiver's office (contract §7.2).
    """
    if case is None:
        case = services.case_create(actor=sender, subject=subject or subject_data(), summary=summary)
    referral = services.referral_create(
        actor=sender,
        case=case,
        to_institution=to,
        services=list(requested),
        urgency=urgency,
        reason=reason,
        consent=consent(categories, given=consent_given, **(consent_fields or {})),
        to_office=to_office,
        province=province,
    )
    move(referral, path, assign=assign)
    referral.refresh_from_db()
    return referral


def referral_body(
    case_id,
    to="DP",
    categories=("identity",),
    *,
    urgency="urgent",
    reason="Motivo confidencial",
    requested=("legal_assistance",),
    **consent_fields,
) -> dict:
    """The JSON body of ``POST /api/v1/referrals/`` (``consent_fields`` replace the consent's fields)."""
    return {
        "case": str(case_id),
        "to_institution": to,
        "services": list(requested),
        "urgency": urgency,
        "reason": reason,
        "consent": {
            "given": True,
            "given_by": "self",
            "method": "verbal",
            "obtained_at": "2026-11-27T10:00:00Z",
            "data_categories": list(categories),
            **consent_fields,
        },
    }
