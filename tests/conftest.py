"""Shared fixtures: two institutions of the agreement and a third one, their staff and API clients."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.actor import actor_for_api_client, actor_for_user
from accounts.choices import Role, Scope
from referrals import references, services
from tests.api.helpers import build_referral
from tests.builders import referral_through_services
from tests.factories import InstitutionFactory, UserFactory, api_client_row, subject_data

ALL_SCOPES = [s.value for s in Scope]


@pytest.fixture
def queued_audit(settings):
    """Audit events as production records them: queued in the request's transaction (one INSERT), sealed
    later by the sequencer — not inline as the test settings do. For tests that count a request's queries:
    the sealing is the sequencer's work, not the request's (docs/audit.md)."""
    settings.AUDIT_SEAL_INLINE = False


@pytest.fixture
def iom(db):
    return InstitutionFactory(code="IOM", name="IOM")


@pytest.fixture
def dp(db):
    return InstitutionFactory(code="DP", name="Defensoría del Pueblo")


@pytest.fixture
def third(db):
    return InstitutionFactory(code="UNHCR", name="UNHCR")


@pytest.fixture
def make_user(db):
    def make(institution, role=Role.CASEWORKER, **kwargs):
        return UserFactory(institution=institution, role=role, **kwargs)

    return make


@pytest.fixture
def make_token(db):
    """``make_token(institution, scopes)`` → bearer token string."""

    def make(institution, scopes=None, **kwargs):
        _client, token = api_client_row(
            institution, scopes or ALL_SCOPES, name=f"client-{timezone.now().timestamp()}", **kwargs
        )
        return token

    return make


@pytest.fixture
def api_as(make_token):
    """``api_as(institution, scopes=None)`` → a DRF APIClient authenticated by a fresh bearer token."""

    def make(institution, scopes=None):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(institution, scopes)}")
        return client

    return make


@pytest.fixture
def user_api():
    """``user_api(user)`` → an APIClient logged in by session as that user."""

    def make(user):
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def iom_caseworker(iom, make_user):
    return make_user(iom, Role.CASEWORKER, username="iom.cw")


@pytest.fixture
def dp_caseworker(dp, make_user):
    return make_user(dp, Role.CASEWORKER, username="dp.cw")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttling, idempotency and statistics caches must not leak from one test into another."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _counter_connection_closed():
    """PostgreSQL: the reference counter's own connection is closed after each test (a test database with
    a session still open on it cannot be dropped at the end of the run)."""
    yield
    references.close_counter_connection()


@pytest.fixture
def sender_api(iom, api_as):
    """IOM's partner system with every scope (including referrals:void)."""
    return api_as(iom)


@pytest.fixture
def receiver_api(dp, api_as):
    """The Defensoría's partner system with every scope."""
    return api_as(dp)


@pytest.fixture
def iom_api(sender_api, dp):
    """IOM's partner system (``sender_api``, the name the production-readiness suites use); DP exists."""
    return sender_api


@pytest.fixture
def dp_api(receiver_api):
    """The Defensoría's partner system (``receiver_api``)."""
    return receiver_api


@pytest.fixture
def dp_supervisor(dp, make_user):
    return make_user(dp, Role.SUPERVISOR, username="dp.supervisor")


@pytest.fixture
def iom_supervisor(iom, make_user):
    """The one IOM supervisor of every suite."""
    return make_user(iom, Role.SUPERVISOR, username="iom.supervisor")


@pytest.fixture
def iom_admin(iom, make_user):
    """The institution admins of every suite."""
    return make_user(iom, Role.ADMIN, username="iom.admin")


@pytest.fixture
def dp_admin(dp, make_user):
    return make_user(dp, Role.ADMIN, username="dp.admin")


@pytest.fixture
def iom_supervisor_actor(iom_supervisor):
    return actor_for_user(iom_supervisor)


@pytest.fixture
def iom_actor(iom_caseworker):
    return actor_for_user(iom_caseworker)


@pytest.fixture
def dp_actor(dp_caseworker):
    return actor_for_user(dp_caseworker)


@pytest.fixture
def service_actor():
    def make(institution, scopes=None):
        client, _token = api_client_row(institution, scopes or ALL_SCOPES, name="svc")
        return actor_for_api_client(client)

    return make


@pytest.fixture
def make_case():
    def make(actor, **subject_overrides):
        return services.case_create(actor=actor, subject=subject_data(**subject_overrides), summary="Resumen")

    return make


@pytest.fixture
def make_referral():
    """A referral from the actor's institution to ``to``, moved along ``path``: (actor, action[, text]);
    ``kwargs``: the other parameters of ``tests.builders.referral_through_services``."""

    def make(actor, to, categories=("identity",), path=(), urgency="normal", **kwargs):
        return referral_through_services(
            sender=actor, to=to, categories=categories, path=path, urgency=urgency, **kwargs
        )

    return make


@pytest.fixture
def referral_in(iom, dp, iom_actor, dp_actor, iom_supervisor_actor):
    """``referral_in(status, **kw)``: an IOM → DP referral moved to ``status`` through the services, with the
    distinctive personal values of ``tests.api.helpers`` (``kw``: see ``build_referral``)."""

    def make(status="draft", **kwargs):
        kwargs.setdefault("supervisor", iom_supervisor_actor)
        return build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status=status, **kwargs)

    return make


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` / ``redis`` run in CI's second pass, where those services are configured.

    In the embedded pass they are deselected (reported, not skipped): the same suite then runs them.
    """
    import os

    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    has_redis = bool(os.environ.get("REDIS_URL"))
    keep, dropped = [], []
    for item in items:
        if (item.get_closest_marker("postgres") and not on_postgres) or (
            item.get_closest_marker("redis") and not has_redis
        ):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(autouse=True)
def _audit_unit_of_work(request):
    """A test is a unit of work like a request (audit.deferred): its own database transaction is the
    baseline, so an event noticed in a service's transaction that rolls back is recorded at its end."""
    from audit import deferred

    for name in ("_django_db_helper", "db", "transactional_db"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            break
    baseline = deferred.enter_unit()
    yield
    deferred.leave_unit(baseline)
