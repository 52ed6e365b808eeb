"""The contract's auth errors (§3): 401 for a missing/unknown/expired/revoked token on every endpoint,
403 for a token without the endpoint's scope, and the refused token audited without the token."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import Role, Scope
from accounts.models import ApiClient, hash_token
from accounts.services import api_client_create, api_client_revoke
from audit.models import AuditEvent

from .helpers import ANY, ENDPOINT_NAMES, READ, WRITE, assert_problem, call, endpoints


@pytest.fixture
def targets(referral_in):
    """A real, visible case and referral: the refusals must not depend on the object's existence."""
    referral = referral_in("accepted")
    return endpoints(referral.case_id, referral.pk)


def _bearer(value):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=value)
    return client


@pytest.fixture
def bad_credentials(iom):
    """name → (Authorization header or None, the token that must never be recorded)."""
    expired_client, expired = api_client_create(
        institution=iom,
        name="expired",
        scopes=[s.value for s in Scope],
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    # Its time passes (the service refuses a client created already expired).
    type(expired_client).objects.filter(pk=expired_client.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    revoked_client, revoked = api_client_create(
        institution=iom, name="revoked", scopes=[s.value for s in Scope]
    )
    api_client_revoke(client=revoked_client)
    unknown = "rcm_" + "A" * 43
    return {
        "none": (None, None),
        "unknown": (f"Bearer {unknown}", unknown),
        "expired": (f"Bearer {expired}", expired),
        "revoked": (f"Bearer {revoked}", revoked),
        "lowercase-scheme-unknown": (f"bearer {unknown}", unknown),
        "malformed-empty": ("Bearer", None),
        "malformed-two-parts": (f"Bearer {unknown} extra", unknown),
        "malformed-non-ascii": ("Bearer tokén", None),
        "other-scheme": ("Basic dXNlcjpwYXNz", None),
    }


@pytest.mark.parametrize("credential", ["none", "unknown", "expired", "revoked"])
@pytest.mark.parametrize("endpoint", ENDPOINT_NAMES)
def test_401_on_every_endpoint(endpoint, credential, targets, bad_credentials):
    header, _token = bad_credentials[credential]
    client = APIClient() if header is None else _bearer(header)
    response = call(client, targets[endpoint])
    assert_problem(response, 401, "not-authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "credential",
    [
        "lowercase-scheme-unknown",
        "malformed-empty",
        "malformed-two-parts",
        "malformed-non-ascii",
        "other-scheme",
    ],
)
def test_401_for_malformed_authorization(credential, targets, bad_credentials):
    header, _token = bad_credentials[credential]
    for name in ("referral-detail", "note-create"):
        response = call(_bearer(header), targets[name])
        assert_problem(response, 401, "not-authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("credential", ["unknown", "expired", "revoked"])
def test_refused_token_is_audited_without_the_token(credential, targets, bad_credentials):
    header, token = bad_credentials[credential]
    before = AuditEvent.objects.count()
    call(_bearer(header), targets["referral-detail"])
    events = list(AuditEvent.objects.filter(action="auth.token_refused").order_by("sequence"))
    assert AuditEvent.objects.count() == before + 1
    assert len(events) == 1
    event = events[0]
    assert event.outcome == "denied"
    assert event.detail.get("cause") == credential
    if credential != "unknown":
        client = ApiClient.objects.get(token_hash=hash_token(token))
        assert event.actor_id == str(client.pk) and event.actor_institution == "IOM"
    row = " ".join(str(getattr(event, f.attname)) for f in AuditEvent._meta.concrete_fields)
    assert token not in row and token[4:20] not in row


def test_no_token_is_not_a_refused_token(targets):
    """An anonymous request is refused (401) but there was no token to record."""
    call(APIClient(), targets["referral-detail"])
    assert not AuditEvent.objects.filter(action="auth.token_refused").exists()


def test_a_valid_token_works_and_its_last_use_is_recorded(iom, targets):
    client, token = api_client_create(institution=iom, name="fresh", scopes=[Scope.REFERRALS_READ])
    assert client.last_used_at is None
    assert call(_bearer(f"Bearer {token}"), targets["referral-detail"]).status_code == 200
    client.refresh_from_db()
    assert client.last_used_at is not None


ONLY = {
    "read-only": [Scope.REFERRALS_READ],
    "write-only": [Scope.REFERRALS_WRITE],
    "void-only": [Scope.REFERRALS_VOID],
    "audit-only": [Scope.AUDIT_READ],
    "webhooks-only": [Scope.WEBHOOKS_MANAGE],
}


def _needs(scope, granted):
    return scope != ANY and scope not in granted


@pytest.mark.parametrize("granted", list(ONLY))
def test_403_without_the_endpoints_scope(granted, iom, api_as, targets):
    """Each endpoint with a token lacking its scope → 403; with the scope → never 401/403."""
    client = api_as(iom, ONLY[granted])
    failures = []
    for name, endpoint in targets.items():
        response = call(client, endpoint)
        if _needs(endpoint[3], ONLY[granted]):
            if response.status_code != 403 or response.json().get("type") != "/problems/permission-denied":
                failures.append((name, response.status_code))
        elif (
            endpoint[0] == "get" or name in ("case-create", "note-create")
        ) and response.status_code not in (
            200,
            201,
        ):
            # held scope, and an answer that does not depend on the side: the request goes through
            failures.append((name, response.status_code, "refused although the scope is held"))
    assert failures == []


@pytest.mark.parametrize("name", [n for n in ENDPOINT_NAMES if endpoints("c", "r")[n][3] in (READ, WRITE)])
def test_403_scope_problem_body(name, iom, api_as, targets):
    scope = targets[name][3]
    other = [Scope.REFERRALS_WRITE] if scope == READ else [Scope.REFERRALS_READ]
    assert_problem(call(api_as(iom, other), targets[name]), 403, "permission-denied")


def test_a_session_user_without_institution_is_403(db, django_user_model, targets):
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-123456")
    client = APIClient()
    client.force_authenticate(user=root)
    assert_problem(call(client, targets["referral-detail"]), 403, "permission-denied")
    assert_problem(call(client, targets["institutions"]), 403, "permission-denied")


def test_an_institution_admin_reads_but_cannot_write(iom, make_user, user_api, targets):
    admin = user_api(make_user(iom, Role.ADMIN))
    assert call(admin, targets["referral-list"]).status_code == 200
    assert_problem(call(admin, targets["note-create"]), 403, "permission-denied")
    assert_problem(call(admin, targets["case-create"]), 403, "permission-denied")
