"""The account services decide (accounts.policy): an admin manages only their own institution's staff,
clients and webhooks; nobody changes their own role or deactivates themselves; usernames, passwords and
expiries are the service's rules; a user never moves to another institution, whatever writes it."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import policy, services
from accounts.actor import actor_for_api_client, actor_for_user, system_actor
from accounts.choices import Role, Scope
from accounts.models import ApiClient, User
from audit.models import AuditEvent
from notifications import services as n_services
from tests.factories import api_client_row

pytestmark = pytest.mark.django_db


def test_an_admin_of_another_institution_is_refused_by_every_account_service(
    iom, dp, iom_admin, dp_admin, iom_caseworker, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    other = actor_for_user(dp_admin)
    client, _token = api_client_row(iom, [Scope.REFERRALS_READ], name="iom-svc")
    endpoint, _secret = n_services.webhook_create(
        institution=iom,
        url="http://127.0.0.1:9/h",
        events=["referral.requested"],
        actor=actor_for_user(iom_admin),
    )
    before = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied):
        services.api_client_revoke(client=client, actor=other)
    with pytest.raises(PermissionDenied):
        services.api_client_create(institution=iom, name="x", scopes=[Scope.REFERRALS_READ], actor=other)
    with pytest.raises(PermissionDenied):
        services.staff_user_set_active(actor=other, user=iom_caseworker, active=False)
    with pytest.raises(PermissionDenied):
        services.staff_user_reset_second_factor(actor=other, user=iom_caseworker)
    with pytest.raises(PermissionDenied):
        services.staff_user_create(institution=iom, username="intruso", role=Role.ADMIN, actor=other)
    with pytest.raises(PermissionDenied):
        services.staff_user_save(actor=other, username=iom_caseworker.username, role="admin", is_new=False)
    with pytest.raises(PermissionDenied):
        n_services.webhook_delete(institution=iom, endpoint_id=endpoint.pk, actor=other)
    client.refresh_from_db()
    iom_caseworker.refresh_from_db()
    assert client.revoked_at is None and iom_caseworker.is_active and iom_caseworker.role == Role.CASEWORKER
    assert not User.objects.filter(username="intruso").exists()
    assert AuditEvent.objects.count() == before


def test_caseworkers_and_api_clients_manage_no_staff_or_clients(iom, iom_caseworker):
    caseworker = actor_for_user(iom_caseworker)
    client, _token = api_client_row(iom, [s.value for s in Scope], name="all-scopes")
    service = actor_for_api_client(client)
    for actor in (caseworker, service):
        assert not policy.may_manage_staff(actor)
        assert not policy.may_manage_api_clients(actor, institution=iom)
        with pytest.raises(PermissionDenied):
            services.api_client_revoke(client=client, actor=actor)
    # Webhooks: an API client with webhooks:manage may, a caseworker may not.
    assert policy.may_manage_webhooks(service, institution=iom)
    assert not policy.may_manage_webhooks(caseworker, institution=iom)


def test_nobody_changes_their_own_role_or_deactivates_themselves(iom, iom_admin):
    me = actor_for_user(iom_admin)
    assert policy.may_change_role(me, iom_admin, Role.ADMIN)  # unchanged: allowed (e-mail, language)
    assert not policy.may_change_role(me, iom_admin, Role.CASEWORKER)
    with pytest.raises(PermissionDenied):
        services.staff_user_save(actor=me, username=iom_admin.username, role="caseworker", is_new=False)
    with pytest.raises(ValidationError):
        services.staff_user_set_active(actor=me, user=iom_admin, active=False)
    iom_admin.refresh_from_db()
    assert iom_admin.role == Role.ADMIN and iom_admin.is_active


def test_the_service_applies_the_username_password_and_expiry_rules(iom):
    with pytest.raises(ValidationError) as weak:
        services.staff_user_create(
            institution=iom, username="ana.nueva", role=Role.CASEWORKER, password="123"
        )
    assert "password" in weak.value.error_dict
    with pytest.raises(ValidationError) as bad_name:
        services.staff_user_create(institution=iom, username="Ana Nueva!", role=Role.CASEWORKER)
    assert "username" in bad_name.value.error_dict
    past = timezone.now() - datetime.timedelta(days=1)
    with pytest.raises(ValidationError) as expired:
        services.api_client_create(
            institution=iom, name="old", scopes=[Scope.REFERRALS_READ], expires_at=past
        )
    assert "expires_at" in expired.value.error_dict
    assert not User.objects.filter(username__in=["ana.nueva", "Ana Nueva!"]).exists()
    assert not ApiClient.objects.filter(name="old").exists()


def test_a_user_never_moves_to_another_institution_whatever_writes_it(iom, dp, iom_caseworker):
    # A queryset update (no save, no clean): the database refuses it.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=iom_caseworker.pk).update(institution=dp)
    # A save of the model: refused as well; clean() says so to the doors that validate.
    iom_caseworker.institution = dp
    with pytest.raises(ValidationError) as refused:
        iom_caseworker.full_clean()
    assert "institution" in refused.value.error_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        iom_caseworker.save()
    assert User.objects.get(pk=iom_caseworker.pk).institution_id == iom.pk


def test_system_actor_events_name_the_institution_concerned(iom):
    actor = system_actor(iom, "manage.py create_staff_user")
    user = services.staff_user_create(institution=iom, username="ana.sys", role=Role.CASEWORKER, actor=actor)
    event = AuditEvent.objects.get(action="user.created", object_id=str(user.pk))
    assert (event.actor_type, event.actor_id, event.actor_label, event.actor_institution) == (
        "system",
        "",
        "manage.py create_staff_user",
        "IOM",
    )
    services.staff_user_create(institution=iom, username="ana.sys", role=Role.SUPERVISOR, actor=actor)
    changed = AuditEvent.objects.get(action="user.changed", object_id=str(user.pk))
    assert changed.detail == {"role": "supervisor", "fields": ["role"]}
