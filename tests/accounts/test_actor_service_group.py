"""An API client's actor finds its institution's service group without a query per request (a per-process
cache), and never acts through a stale group once the group or the institution changed."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import actor as actor_module
from accounts.actor import actor_for_api_client, clear_service_group_cache, service_group_id
from accounts.choices import GroupKind
from accounts.services import api_client_create
from tests.factories import InstitutionFactory

URL = "/api/v1/referrals/"


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()  # throttle counters
    clear_service_group_cache()
    yield
    cache.clear()


def _queries(client, url=URL) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def _group_lookups(sqls, code) -> int:
    return sum(1 for sql in sqls if f"{code}:{GroupKind.SERVICE.value}" in sql)


def test_an_authenticated_api_request_costs_one_query_less_once_the_group_is_known(iom, api_as):
    client = api_as(iom)
    _queries(client)  # warm every other per-process cache (permission ids, last_used_at)
    clear_service_group_cache()
    cold = _queries(client)
    warm = _queries(client)
    assert _group_lookups(cold, "IOM") == 1
    assert _group_lookups(warm, "IOM") == 0
    assert len(warm) == len(cold) - 1
    assert len(_queries(client)) == len(warm)  # and stays there


def test_the_cached_group_is_the_institutions_service_group(iom, dp):
    iom_group = Group.objects.get(name="IOM:service")
    assert service_group_id(iom) == iom_group.pk
    assert service_group_id(dp) == Group.objects.get(name="DP:service").pk != iom_group.pk


def test_a_deleted_and_recreated_group_is_not_used_stale(iom, django_assert_num_queries):
    client, _token = api_client_create(institution=iom, name="svc", scopes=["referrals:read"])
    old = actor_for_api_client(client).group_ids
    with django_assert_num_queries(0):
        assert actor_for_api_client(client).group_ids == old
    Group.objects.filter(pk=old[0]).delete()  # queryset delete still sends post_delete per row
    new = actor_for_api_client(client).group_ids
    assert new != old and new == (Group.objects.get(name="IOM:service").pk,)


def test_a_new_institution_clears_the_cache(iom):
    service_group_id(iom)
    assert actor_module._service_group_ids
    InstitutionFactory(code="NEW", name="New")
    assert not actor_module._service_group_ids


def test_an_expired_entry_is_looked_up_again(iom, django_assert_num_queries):
    group_id = service_group_id(iom)
    key = (iom.pk, iom.code)
    assert actor_module._service_group_ids[key][1] > actor_module.time.monotonic()
    actor_module._service_group_ids[key] = (group_id, actor_module.time.monotonic() - 1)
    with django_assert_num_queries(1):
        assert service_group_id(iom) == group_id
    with django_assert_num_queries(0):
        assert service_group_id(iom) == group_id
