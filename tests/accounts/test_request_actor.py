"""The actor of a request is computed once per request object and nothing is stashed on the framework's
request objects (no ``_actor`` attribute on Django's or DRF's request); another request gets its own."""

from __future__ import annotations

import gc

from django.test import RequestFactory
from rest_framework.request import Request

from accounts import actor as actor_module
from accounts.actor import actor_from_request


def test_the_actor_is_computed_once_per_request_and_not_stashed_on_it(iom, make_user, monkeypatch):
    user = make_user(iom)
    calls = []
    real = actor_module.actor_for_user
    monkeypatch.setattr(actor_module, "actor_for_user", lambda *a, **k: calls.append(1) or real(*a, **k))
    django_request = RequestFactory().get("/")
    django_request.user = user
    drf_request = Request(django_request)
    drf_request.user, drf_request.auth = user, None  # as DRF's session authentication sets them

    first = actor_from_request(drf_request)
    assert first is not None and first.institution == iom
    assert actor_from_request(drf_request) is first and len(calls) == 1
    assert not [name for name in vars(drf_request) if name.endswith("actor")]
    assert "_actor" not in vars(django_request)

    other = RequestFactory().get("/")
    other.user = user
    assert actor_from_request(other) is not first and len(calls) == 2

    before = len(actor_module._request_actors)
    del drf_request, other
    gc.collect()
    assert len(actor_module._request_actors) < before  # entries go with their requests
