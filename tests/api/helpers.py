"""Shared helpers of the partner-API suites: problem+json assertions, distinctive personal values,
and building referrals in any status through the real services."""

from __future__ import annotations

import datetime
import json

from django.utils import timezone

from referrals import services
from referrals.choices import CATEGORY_FIELDS, Status

API = "/api/v1"
PROBLEM_KEYS = {"type", "title", "status", "detail"}

#: One path of (side, action, text) per status, from a fresh draft. ``side`` is "sender" or "receiver".
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

#: Distinctive personal values: none of them may appear where personal data must not.
SECRET_SUBJECT = {
    "given_name": "Zuleikaxq",
    "family_name": "Quintanar-Abadiaxq",
    "date_of_birth": datetime.date(1987, 3, 19),
    "sex": "female",
    "nationality": "VEN",
    "languages": ["es", "en"],
    "document_type": "passport",
    "document_number": "XK4471882Q",
    "phone": "+507 6999-4242",
    "email": "zuleika.qx@example.net",
    "current_location": "Bajo Chiquito km 7xq",
    "protection_needs": "Amenazada por una red de trata 77xq",
    "is_minor": False,
}
#: The searchable strings of each category (short codes such as VEN or es are not distinctive).
SECRET_STRINGS_BY_CATEGORY = {
    "identity": ["Zuleikaxq", "Quintanar-Abadiaxq", "1987-03-19"],
    "contact": ["+507 6999-4242", "zuleika.qx@example.net", "Bajo Chiquito km 7xq"],
    "documents": ["XK4471882Q"],
    "protection_needs": ["Amenazada por una red de trata 77xq"],
}
SUMMARY = "RESUMEN-SECRETO-DEL-CASO"
REASON = "MOTIVO-SECRETO-DE-REMISION"
NOTE = "NOTA-SECRETA-ENTRE-INSTITUCIONES"
FREE_TEXTS = [REASON, NOTE, "MOTIVO-RECHAZO-SECRETO", "ESPERA-SECRETA", "RESULTADO-SECRETO", "FALLO-SECRETO"]
FREE_TEXTS += ["CANCELACION-SECRETA", "ANULACION-SECRETA", "RETIRO-SECRETO"]
ALL_SUBJECT_STRINGS = [s for values in SECRET_STRINGS_BY_CATEGORY.values() for s in values]


def subject_keys(categories) -> set[str]:
    return {f for c in categories for f in CATEGORY_FIELDS[c]}


def assert_problem(response, status: int, slug: str, *, errors: set[str] | None = None) -> dict:
    """An RFC 9457 body with the contract's slug; ``errors`` = the exact set of error keys (if given)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) >= PROBLEM_KEYS, body
    assert body["type"] == f"/problems/{slug}", body
    assert body["status"] == status, body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    if errors is not None:
        assert set(body.get("errors", {})) == errors, body
        assert all(
            isinstance(v, list) and v and all(isinstance(m, str) for m in v) for v in body["errors"].values()
        ), body
    return body


def text_of(response) -> str:
    """The body as text with JSON escapes decoded (so that non-ASCII secrets are found too)."""
    raw = response.content.decode()
    try:
        return json.dumps(json.loads(raw), ensure_ascii=False)
    except ValueError:
        return raw


def leaked(response, secrets) -> list[str]:
    body = text_of(response)
    return [s for s in secrets if s in body]


def consent(categories=("identity",), given=True) -> dict:
    return {
        "given": given,
        "given_by": "self",
        "method": "verbal",
        "obtained_at": timezone.now(),
        "data_categories": list(categories),
    }


def build_referral(
    *,
    sender,
    receiver,
    to,
    status=Status.DRAFT,
    categories=("identity",),
    urgency="normal",
    supervisor=None,
    case=None,
    consent_given=True,
):
    """A referral moved to ``status`` through the real services (``supervisor`` voids)."""
    if case is None:
        case = services.case_create(actor=sender, subject=dict(SECRET_SUBJECT), summary=SUMMARY)
    referral = services.referral_create(
        actor=sender,
        case=case,
        to_institution=to,
        services=["legal_assistance", "protection"],
        urgency=urgency,
        reason=REASON,
        consent=consent(categories, given=consent_given),
    )
    actors = {"sender": sender, "receiver": receiver, "supervisor": supervisor or sender}
    for side, action, *text in PATH_TO[Status(status)]:
        services.referral_transition(
            actor=actors[side],
            referral_id=referral.pk,
            action=action,
            reason=text[0] if text and action != "complete" else None,
            outcome=text[0] if text and action == "complete" else None,
        )
    referral.refresh_from_db()
    return referral
