"""Walk the URL configuration: every API operation that returns personal data must record an audit event.

Each (route, method) under /api/v1/ must be classified here, in ``MUST_AUDIT`` (the response carries
personal data, or is an export: calling it must leave an event naming the caller, the object and the
request) or in ``NO_PERSONAL_DATA`` (with the reason). A new route or method that is in neither list
fails ``test_every_api_operation_is_classified``: adding an endpoint forces the decision.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.choices import Role
from audit.models import AuditEvent
from referrals.choices import Side, Status
from referrals.lifecycle import TRANSITIONS
from tests.api.helpers import ALL_SUBJECT_STRINGS, FREE_TEXTS, SUMMARY
from tests.builders import referral_body
from tests.factories import subject_json

PREFIX = "api/v1/"
REFERRAL = "api/v1/referrals/<uuid:pk>/"

#: Operations whose response carries no personal data (and why). Checked by a scan below where possible.
NO_PERSONAL_DATA = {
    ("api/v1/institutions/", "GET"): "the directory: codes and names of institutions",
    ("api/v1/offices/", "GET"): "the service directory: offices, their provinces, services and languages",
    ("api/v1/directory/hsds/", "GET"): "the same directory as Open Referral HSDS 3.0: offices and services",
    ("api/v1/cases/", "GET"): "metadata only (id, reference, dates); a document-number search is audited",
    ("api/v1/referrals/", "GET"): "list items carry metadata only (contract §4)",
    (REFERRAL + "events/", "GET"): "the timeline: actions, statuses and institution codes",
    ("api/v1/audit/events/", "GET"): "audit events carry ids and codes only, never personal data",
    ("api/v1/audit/checkpoints/", "GET"): "signed checkpoints: a sequence number, a hash and a time",
    ("api/v1/audit/checkpoints/key/", "GET"): "the checkpoints' public key",
    ("api/v1/audit/checkpoints/latest/", "GET"): "the latest signed checkpoint",
    ("api/v1/audit/checkpoints/<int:tree_size>/cosignatures/", "POST"): "a witness's key and signature",
    ("api/v1/audit/proofs/inclusion/", "GET"): "a leaf index and hashes (the event must be visible)",
    ("api/v1/audit/proofs/consistency/", "GET"): "two tree sizes and hashes",
    ("api/v1/notifications/", "GET"): "notifications hold references and statuses only",
    ("api/v1/notifications/read-all/", "POST"): "a count",
    ("api/v1/notifications/preferences/", "GET"): "the caller's e-mail switches",
    ("api/v1/notifications/preferences/", "PUT"): "the caller's e-mail switches",
    ("api/v1/notifications/<str:pk>/read/", "POST"): "no body",
    ("api/v1/webhooks/", "GET"): "subscriptions: URLs and event types of the caller's institution",
    ("api/v1/webhooks/", "POST"): "a subscription and its secret: no personal data",
    ("api/v1/webhooks/<str:pk>/", "GET"): "a subscription",
    ("api/v1/webhooks/<str:pk>/", "DELETE"): "no body",
    ("api/v1/webhooks/<str:pk>/deliveries/", "GET"): "delivery attempts (status codes, times)",
    ("api/v1/webhooks/<str:pk>/deliveries/<str:delivery_id>/replay/", "POST"): "a delivery id and state",
    ("api/v1/schema/", "GET"): "the OpenAPI document",
    ("api/v1/docs/", "GET"): "the API documentation page",
}

#: Operations that must record an event: the actions that may record it (reads, or the write it made).
MUST_AUDIT = {
    ("api/v1/cases/", "POST"): {"case.created"},
    ("api/v1/cases/<uuid:pk>/", "GET"): {"case.viewed"},
    ("api/v1/referrals/", "POST"): {"referral.created"},
    (REFERRAL, "GET"): {"referral.viewed"},
    (REFERRAL + "notes/", "GET"): {"note.viewed"},
    (REFERRAL + "notes/", "POST"): {"note.created"},
    (REFERRAL + "consent/withdraw/", "POST"): {"consent.withdrawn"},
    # Routing answers with the referral's representation: the routing event is its trace.
    (REFERRAL + "route/", "POST"): {"referral.routed", "referral.viewed"},
    ("api/v1/audit/events/export/", "GET"): {"audit.exported"},
    # A match or a statistics read shows no personal data, but the search and the read are recorded.
    ("api/v1/cases/match/", "POST"): {"case.searched"},
    ("api/v1/statistics/referrals/", "GET"): {"statistics.viewed"},
    # Lifecycle actions answer with the referral's representation: the transition event is its trace.
    **{
        (REFERRAL + f"{action}/", "POST"): {"referral.transitioned", "referral.viewed"}
        for action in TRANSITIONS
    },
}

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def api_operations() -> set[tuple[str, str]]:
    """Every (route, METHOD) served under /api/v1/, from the URL configuration and the views' handlers."""
    operations = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if not route.startswith(PREFIX):
            continue
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        methods = [m for m in METHODS if view is not None and hasattr(view, m)] or ["get"]
        operations |= {(route, m.upper()) for m in methods}
    return operations


def test_every_api_operation_is_classified():
    walked = api_operations()
    assert len(walked) > 25  # the walk itself found the API
    unclassified = walked - set(MUST_AUDIT) - set(NO_PERSONAL_DATA)
    assert not unclassified, (
        "New API operations: decide whether each returns personal data (then it must record an audit event: "
        f"add it to MUST_AUDIT) or not (NO_PERSONAL_DATA, with the reason): {sorted(unclassified)}"
    )
    stale = (set(MUST_AUDIT) | set(NO_PERSONAL_DATA)) - walked
    assert not stale, f"Classified operations that no longer exist: {sorted(stale)}"
    assert not set(MUST_AUDIT) & set(NO_PERSONAL_DATA)


# --- calling every MUST_AUDIT operation ------------------------------------------------------------


@pytest.fixture
def world(iom, dp, iom_actor, iom_supervisor_actor, api_as, user_api, make_user, referral_in):
    """The two parties, their partner systems and supervisors, and a referral in any status."""
    iom_api, dp_api = api_as(iom), api_as(dp)
    return {
        "iom": iom_api,
        "dp": dp_api,
        Side.SENDER: iom_api,
        Side.RECEIVER: dp_api,
        "iom_supervisor": user_api(iom_supervisor_actor.user),
        "dp_supervisor": user_api(make_user(dp, Role.SUPERVISOR, username="dp.sup")),
        "referral": referral_in,
        "iom_actor": iom_actor,
    }


def _action_call(action):
    transition = TRANSITIONS[action]
    preferred = [Status.REQUESTED, Status.RECEIVED, Status.ACCEPTED, Status.IN_PROGRESS, Status.ON_HOLD]
    status = next((s for s in preferred if s in transition.from_statuses), Status.DRAFT)
    body = {"outcome": "Resultado"} if transition.needs == "outcome" else {}
    if transition.needs == "reason" or transition.optional_reason:
        body = {"reason": "Motivo"}

    def call(world):
        referral = world["referral"](status)
        return world[transition.side], {"pk": referral.pk}, body, lambda response: referral.pk

    return call


def _case(world):
    from referrals import services

    return services.case_create(actor=world["iom_actor"], subject=_subject(), summary="x")


def _office(institution):
    from accounts.services import office_save

    office, _created = office_save(
        institution=institution, code="DARIEN", name="Darién", province="PA-5", services=["legal_assistance"]
    )
    return office


def _subject():
    from tests.factories import subject_data

    return subject_data()


CALLS = {
    ("api/v1/cases/", "POST"): lambda w: (
        w["iom"],
        {},
        {"subject": subject_json(), "summary": "Resumen"},
        lambda r: r.json()["id"],
    ),
    ("api/v1/cases/<uuid:pk>/", "GET"): lambda w: (
        lambda case: (w["iom"], {"pk": case.pk}, None, lambda r: case.pk)
    )(_case(w)),
    ("api/v1/referrals/", "POST"): lambda w: (
        lambda case: (
            w["iom"],
            {},
            referral_body(case.pk, urgency="normal", reason="Motivo"),
            lambda r: r.json()["id"],
        )
    )(_case(w)),
    (REFERRAL, "GET"): lambda w: (lambda ref: (w["dp"], {"pk": ref.pk}, None, lambda r: ref.pk))(
        w["referral"](Status.ACCEPTED)
    ),
    (REFERRAL + "notes/", "GET"): lambda w: (lambda ref: (w["dp"], {"pk": ref.pk}, None, lambda r: ref.pk))(
        w["referral"](Status.ACCEPTED)
    ),
    (REFERRAL + "notes/", "POST"): lambda w: (
        lambda ref: (w["dp"], {"pk": ref.pk}, {"body": "Nota"}, lambda r: r.json()["id"])
    )(w["referral"](Status.ACCEPTED)),
    (REFERRAL + "consent/withdraw/", "POST"): lambda w: (
        lambda ref: (w["iom"], {"pk": ref.pk}, {"reason": "Retiro"}, lambda r: ref.pk)
    )(w["referral"](Status.ACCEPTED)),
    (REFERRAL + "route/", "POST"): lambda w: (
        lambda ref: (
            w["dp"],
            {"pk": ref.pk},
            {"to_office": _office(ref.to_institution).code},
            lambda r: ref.pk,
        )
    )(w["referral"](Status.ACCEPTED)),
    ("api/v1/audit/events/export/", "GET"): lambda w: (w["iom"], {}, None, lambda r: ""),
    ("api/v1/cases/match/", "POST"): lambda w: (
        w["iom"],
        {},
        {"given_name": "Ana", "family_name": "Pérez"},
        lambda r: "",
    ),
    ("api/v1/statistics/referrals/", "GET"): lambda w: (
        w["iom"],
        {},
        {"from": "2026-01-01", "to": "2026-12-31", "by": "month"},
        lambda r: "referrals",
    ),
    **{(REFERRAL + f"{action}/", "POST"): _action_call(action) for action in TRANSITIONS},
}


def _url(route: str, params: dict) -> str:
    url = "/" + route
    for name, value in params.items():
        url = url.replace(f"<uuid:{name}>", str(value)).replace(f"<str:{name}>", str(value))
    assert "<" not in url, url
    return url


def _must_audit_operations():
    """The walked operations classified as MUST_AUDIT (so an unwalked entry is never tested vacuously)."""
    return sorted(op for op in api_operations() if op in MUST_AUDIT)


def test_every_must_audit_operation_has_a_call():
    missing = [op for op in _must_audit_operations() if op not in CALLS]
    assert not missing, f"MUST_AUDIT operations without a call in CALLS: {missing}"


@pytest.mark.parametrize("operation", _must_audit_operations(), ids=lambda op: f"{op[1]} {op[0]}")
def test_calling_it_records_an_audit_event(operation, world):
    route, method = operation
    client, params, body, object_of = CALLS[operation](world)
    request_id = f"walk-{abs(hash(operation)) % 10**12}"
    call = getattr(client, method.lower())
    kwargs = {"format": "json"} if body is not None else {}
    response = call(_url(route, params), body, HTTP_X_REQUEST_ID=request_id, **kwargs)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    assert 200 <= response.status_code < 300, (response.status_code, getattr(response, "content", b"")[:300])

    events = AuditEvent.objects.filter(request_id=request_id)
    caller = {e.actor_institution for e in events}
    expected = MUST_AUDIT[operation]
    matching = [e for e in events if e.action in expected and e.object_id == str(object_of(response))]
    assert matching, (
        f"{method} /{route} answered {response.status_code} without recording any of {sorted(expected)} "
        f"on its object; recorded: {[(e.action, e.object_type, e.object_id) for e in events]}"
    )
    assert caller <= {"IOM", "DP"} and all(e.actor_id for e in matching)


# --- the NO_PERSONAL_DATA reads really carry none --------------------------------------------------


@pytest.mark.django_db
def test_no_personal_data_reads_carry_none(world):
    referral = world["referral"](Status.ACCEPTED)
    world["dp"].post(_url(REFERRAL + "notes/", {"pk": referral.pk}), {"body": "Nota"}, format="json")
    secrets = [*ALL_SUBJECT_STRINGS, *FREE_TEXTS, SUMMARY]
    answered = set()
    routes = [
        route
        for route, method in sorted(NO_PERSONAL_DATA)
        if method == "GET"
        and "<str:" not in route
        and not route.endswith("docs/")
        # hashes and sizes only, but they need parameters or a checkpoint: tests/audit/test_proofs.py
        and "audit/proofs/" not in route
        and not route.endswith("checkpoints/latest/")
    ]
    for route in routes:
        # Staff (notifications are theirs) and partner systems (webhooks are theirs), of both sides.
        for who in ("iom_supervisor", "dp_supervisor", "iom", "dp"):
            response = world[who].get(_url(route, {"pk": referral.pk}))
            assert response.status_code in (200, 403), (route, who, response.status_code)
            if response.status_code == 200:
                answered.add(route)
                text = response.content.decode()
                assert not [s for s in secrets if s in text], (route, who)
    assert answered == set(routes) and len(routes) >= 8
