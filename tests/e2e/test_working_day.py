"""Issue 12 in a real browser: the team queue (a referral accepted through the API → a DP caseworker takes
it → a supervisor reassigns it), the search by reference, the printable sheet (only the consented data),
and the API docs page (Swagger UI from the system's own files: no CSP violation, no outside request).
A console error or CSP violation fails any of them (``pages`` fixture)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from .conftest import PHONE_VIEWPORT, sign_in

pytestmark = pytest.mark.browser

WITHHELD = ("6000-1234", "maria@example.org", "Lajas Blancas", "V12345678", "Sobreviviente")


@pytest.fixture
def dp_team(people):
    """A DP supervisor (with a TOTP device) and a second DP caseworker."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.choices import Role
    from accounts.services import staff_user_create

    from .conftest import PASSWORD

    sup = staff_user_create(
        institution=people.dp, username="dp.supervisor", role=Role.SUPERVISOR, password=PASSWORD
    )
    TOTPDevice.objects.create(user=sup, name="app", confirmed=True)
    cw2 = staff_user_create(
        institution=people.dp, username="dp.caseworker2", role=Role.CASEWORKER, password=PASSWORD
    )
    return sup, cw2


@pytest.fixture
def sent_referral(people, make_referral):
    """``sent_referral(categories)`` → a referral IOM → DP, sent, awaiting DP's answer."""
    from accounts.actor import actor_for_user

    def make(categories=("identity",), urgency="urgent"):
        iom = actor_for_user(people.iom_cw)
        return make_referral(iom, people.dp, categories=categories, path=[(iom, "send")], urgency=urgency)

    return make


def test_team_queue_take_and_reassign(pages, people, dp_team, sent_referral, make_token, shot):
    from rest_framework.test import APIClient

    supervisor_user, second_caseworker = dp_team
    referral = sent_referral()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(people.dp)}")
    assert api.post(f"/api/v1/referrals/{referral.pk}/accept/", {}, format="json").status_code == 200

    # The DP caseworker finds it in the team queue on the start page, and takes it.
    dp = pages.new()
    sign_in(dp, people.dp_cw)
    queue = dp.locator("#team-queue")
    row = queue.locator(f"tr[data-reference='{referral.reference}']")
    assert row.count() == 1
    assert "María José" in row.inner_text()  # identity consented: the receiver sees the name
    shot(dp, "10-home-team-queue")
    with dp.expect_navigation():
        row.locator("button[data-action=take]").click()
    assert dp.locator(".message-success").count() == 1
    assert dp.locator(f"#team-queue tr[data-reference='{referral.reference}']").count() == 0
    assert dp.locator(f"#assigned tr[data-reference='{referral.reference}']").count() == 1

    # The same list through the filters: assigned to me.
    dp.goto("/referrals/?direction=inbound&assignee=me")
    assert dp.locator(f"#referral-table tr[data-reference='{referral.reference}']").count() == 1

    # The supervisor sees it in the caseworker's workload, then reassigns it from the referral page.
    sup = pages.new()
    sign_in(sup, supervisor_user)
    sup.goto("/supervision/workload/")
    cell = sup.locator(f"tr[data-user='{people.dp_cw.username}'] [data-col=inbound_assigned_open]")
    assert cell.inner_text().strip() == "1"
    sup.goto(f"/referrals/{referral.pk}/")
    form = sup.locator("#assign-form")
    form.locator("[name=assignee]").select_option(label=second_caseworker.username)
    shot(sup, "11-referral-reassign")
    with sup.expect_navigation():
        form.locator("button[type=submit]").click()
    assert second_caseworker.username in sup.locator("#work").inner_text()
    sup.goto("/supervision/workload/")
    cell = sup.locator(f"tr[data-user='{second_caseworker.username}'] [data-col=inbound_assigned_open]")
    assert cell.inner_text().strip() == "1"
    shot(sup, "12-workload")


def test_search_by_reference_and_the_list_on_a_phone(pages, people, sent_referral, shot):
    referrals = [sent_referral(), sent_referral(urgency="normal")]
    target = referrals[1]
    page = pages.new(viewport=PHONE_VIEWPORT)
    sign_in(page, people.iom_cw)
    page.locator("#home-q").fill(target.reference.lower())
    with page.expect_navigation():
        page.locator("#reference-search button[type=submit]").click()
    assert "q=" in page.url
    rows = page.locator("#referral-table tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-reference") == target.reference
    page.goto("/referrals/?direction=outbound")
    assert page.locator("#referral-table tbody tr").count() == 2
    shot(page, "13-referrals-phone")


def test_printable_sheet_has_only_the_consented_fields(pages, people, sent_referral, shot):
    referral = sent_referral(categories=("identity",))
    page = pages.new()
    sign_in(page, people.iom_cw)
    page.goto(f"/referrals/{referral.pk}/")
    # The sender's page marks what travels with the consent and what stays.
    assert page.locator("[data-field=given_name][data-travels=yes]").count() == 1
    assert page.locator("[data-field=phone][data-travels=no]").count() == 1
    with page.expect_navigation():
        page.locator("#print-link").click()
    sheet = page.locator("#referral-sheet")
    text = sheet.inner_text()
    assert referral.reference in text and "María José" in text and people.iom_cw.username in text
    assert "Venezuela" in text
    content = page.content()
    for value in WITHHELD:
        assert value not in content
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator(".print-toolbar").is_visible()
    page.emulate_media(media="screen")
    shot(page, "14-referral-sheet")


def test_api_docs_load_from_our_own_files(pages, people, live_server, shot):
    page = pages.new()
    anonymous = pages.new()
    anonymous.goto("/api/v1/docs/")
    assert "/accounts/login/" in anonymous.url and "next=/api/v1/docs/" in anonymous.url

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, people.iom_cw)
    page.goto("/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "partner API" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock").count() > 5  # the operations are rendered
    own = urlparse(live_server.url).netloc
    outside = [
        url for url in requests if urlparse(url).scheme in ("http", "https") and urlparse(url).netloc != own
    ]
    assert not outside, f"requests to other hosts: {outside}"
    assert any(re.search(r"/static/drf_spectacular_sidecar/", url) for url in requests)
    shot(page, "15-api-docs", full_page=False)
