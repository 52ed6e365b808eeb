"""Shared helpers of the partner-API suites: problem+json assertions, distinctive personal values,
and building referrals in any status through the real services."""

from __future__ import annotations

import datetime
import json

from referrals.choices import CATEGORY_FIELDS, Status
from tests.builders import PATH_TO, consent, path_to, referral_through_services  # noqa: F401 — the suites' imports
from tests.builders import referral_body as _referral_body

API = "/api/v1"
PROBLEM_KEYS = {"type", "title", "status", "detail"}

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
    """A referral moved to ``status`` through the real services (``supervisor`` voids), with the
    distinctive personal values above."""
    return referral_through_services(
        sender=sender,
        to=to,
        path=path_to(status, sender=sender, receiver=receiver, supervisor=supervisor),
        case=case,
        categories=categories,
        urgency=urgency,
        requested=("legal_assistance", "protection"),
        reason=REASON,
        subject=dict(SECRET_SUBJECT),
        summary=SUMMARY,
        consent_given=consent_given,
    )


# --- the endpoint catalog ------------------------------------------------------------------------

ACTION_NEEDS = {
    "send": None,
    "receive": None,
    "accept": None,
    "reject": "reason",
    "start": None,
    "hold": "reason",
    "resume": None,
    "complete": "outcome",
    "fail": "reason",
    "cancel": "reason",
    "void": "reason",
}
ACTIONS = tuple(ACTION_NEEDS)
READ, WRITE, ANY = "referrals:read", "referrals:write", "any"


def action_body(action: str, text: str = "Texto de la acción") -> dict:
    needs = ACTION_NEEDS[action]
    return {needs: text} if needs else {}


def case_body() -> dict:
    data = dict(SECRET_SUBJECT)
    data["date_of_birth"] = data["date_of_birth"].isoformat()
    return {"subject": data, "summary": SUMMARY}


def referral_body(case_id, to="DP", categories=("identity",)) -> dict:
    return _referral_body(case_id, to, categories, reason=REASON, method="written")


def endpoints(case_id, referral_id):
    """Every endpoint of the partner API's referral part: ``{name: (method, path, body, scope)}``."""
    ref = f"{API}/referrals/{referral_id}"
    catalog = {
        "institutions": ("get", f"{API}/institutions/", None, ANY),
        "schema": ("get", f"{API}/schema/", None, ANY),
        "case-list": ("get", f"{API}/cases/", None, READ),
        "case-create": ("post", f"{API}/cases/", case_body(), WRITE),
        "case-detail": ("get", f"{API}/cases/{case_id}/", None, READ),
        "referral-list": ("get", f"{API}/referrals/", None, READ),
        "referral-create": ("post", f"{API}/referrals/", referral_body(case_id), WRITE),
        "referral-detail": ("get", f"{ref}/", None, READ),
        "events": ("get", f"{ref}/events/", None, READ),
        "notes-list": ("get", f"{ref}/notes/", None, READ),
        "note-create": ("post", f"{ref}/notes/", {"body": NOTE}, WRITE),
        "consent-withdraw": ("post", f"{ref}/consent/withdraw/", {"reason": "RETIRO-SECRETO"}, WRITE),
    }
    for action in ACTIONS:
        catalog[f"action-{action}"] = ("post", f"{ref}/{action}/", action_body(action), WRITE)
    return catalog


ENDPOINT_NAMES = tuple(endpoints("c", "r"))
#: Endpoints about one object (a case or a referral): a foreign caller gets 404 on each.
DETAIL_ENDPOINTS = tuple(
    n
    for n in ENDPOINT_NAMES
    if n not in ("institutions", "schema", "case-list", "case-create", "referral-list", "referral-create")
)


def call(client, endpoint):
    method, path, body, _scope = endpoint
    if method == "get":
        return client.get(path)
    return client.post(path, body, format="json")
