"""Lists refuse what they do not know (contract §7.5): an unknown query parameter or a bad value on any
``/api/`` list is a 400 problem+json naming the parameter; ``cursor``, ``page_size`` and ``format`` are
known everywhere. The walk covers every GET view of the URLconf under /api/, so a new list cannot
forget the rule (plumbing.query.StrictQuery)."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from notifications import services as notification_services

from .helpers import API, assert_problem

pytestmark = pytest.mark.django_db

#: GET views under /api/ that are not the partner API's resources: the served schema (OpenAPI's own
#: ``format``/``lang`` options) and the Swagger page (a web page for signed-in staff).
NOT_RESOURCES = {"api/v1/schema/", "api/v1/docs/"}
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _routes(resolver=None, prefix=""):
    """(route, view class) of every URL pattern, with the route as written (``<uuid:pk>``)."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, getattr(entry.callback, "cls", None) or getattr(entry.callback, "view_class", None)


def api_get_routes() -> list[str]:
    """Every route under /api/ whose view answers GET (DRF views), less :data:`NOT_RESOURCES`."""
    routes = []
    for route, view in _routes():
        if route.startswith("api/") and route not in NOT_RESOURCES:
            assert view is not None, f"{route}: not a class-based API view"
            if hasattr(view, "get"):
                routes.append(route)
    return routes


@pytest.fixture
def fill(referral_in, iom):
    """The path of a route with real ids (the referral's, its case's, a webhook's)."""
    referral = referral_in("accepted")
    endpoint, _secret = notification_services.webhook_create(
        institution=iom, url="https://example.org/hook", events=["referral.requested"]
    )
    ids = {"referrals": referral.pk, "cases": referral.case_id, "webhooks": endpoint.pk}

    def path(route: str) -> str:
        collection = route.split("/")[2]
        return "/" + _CONVERTER.sub(lambda _m: str(ids[collection]), route)

    return path


def test_the_walk_finds_every_list():
    routes = set(api_get_routes())
    for expected in (
        "api/v1/referrals/",
        "api/v1/cases/",
        "api/v1/institutions/",
        "api/v1/referrals/<uuid:pk>/events/",
        "api/v1/referrals/<uuid:pk>/notes/",
        "api/v1/audit/events/",
        "api/v1/audit/checkpoints/",
        "api/v1/webhooks/",
        "api/v1/webhooks/<str:pk>/deliveries/",
        "api/v1/notifications/",
        "api/v1/statistics/referrals/",
    ):
        assert expected in routes


@pytest.mark.parametrize("route", api_get_routes())
def test_every_api_get_refuses_an_unknown_parameter_by_name(route, fill, iom, api_as):
    response = api_as(iom).get(fill(route) + "?bogus_filter=1")
    body = assert_problem(response, 400, "validation-error")
    assert "bogus_filter" in body["errors"], body


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("to_institution=IOM", "to_institution"),
        ("assignee=x", "assignee"),
        ("page_size=abc", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=-3", "page_size"),
        ("status=requested&status=accepted", "status"),
        ("ordering=reason", "ordering"),
        ("format=xml", "format"),
    ],
)
def test_the_referral_list_names_the_parameter_it_refuses(query, named, sender_api):
    response = sender_api.get(f"{API}/referrals/?{query}")
    body = assert_problem(response, 400, "validation-error", errors={named})
    assert body["detail"] != "The request body is invalid."


@pytest.mark.parametrize(
    "query", ["", "page_size=5", "format=json", "page_size=1000", "ordering=-updated_at"]
)
def test_known_parameters_pass(query, sender_api):
    assert sender_api.get(f"{API}/referrals/?{query}").status_code == 200


def test_statistics_know_format_page_size_and_cursor(iom, api_as):
    api = api_as(iom)
    ok = api.get(f"{API}/statistics/referrals/?from=2026-01-01&to=2026-01-31&by=month&format=json")
    assert ok.status_code == 200, ok.content
    bad = api.get(f"{API}/statistics/referrals/?from=2026-01-01&to=2026-01-31&by=month&unit=day")
    assert_problem(bad, 400, "validation-error", errors={"unit"})


def test_authentication_comes_before_the_query(client):
    assert client.get(f"{API}/referrals/?bogus=1").status_code == 401
