"""The scope ``statistics:read``: accepted by ``create_api_client`` and by the admins' API-client page."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.test import Client

from accounts.choices import Role
from accounts.models import ApiClient
from tests.web.conftest import logged_in_client

URL = "/api/v1/statistics/referrals/?from=2026-03-01&to=2026-03-31&by=month"


def test_create_api_client_accepts_the_scope(iom):
    out = io.StringIO()
    call_command("create_api_client", "IOM", "Informes", "--scopes", "statistics:read", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    assert ApiClient.objects.get(name="Informes").scopes == ["statistics:read"]
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    # ...and nothing else: the referrals need referrals:read.
    assert Client().get("/api/v1/referrals/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403


def test_the_admins_page_offers_and_grants_the_scope(iom, make_user):
    admin = logged_in_client(make_user(iom, Role.ADMIN, username="iom.admin"))
    form = admin.get("/manage/api-clients/new/").content.decode()
    assert 'value="statistics:read"' in form
    page = admin.post("/manage/api-clients/new/", {"name": "Informes DP", "scopes": ["statistics:read"]})
    assert page.status_code == 200
    assert ApiClient.objects.get(name="Informes DP").scopes == ["statistics:read"]
