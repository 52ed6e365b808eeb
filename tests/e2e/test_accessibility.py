"""axe-core (through axe-playwright-python) on every kind of page, in the real browser with the real CSS:
no WCAG 2.1 A/AA violation — colour contrast included, which the HTML checks of tests/web cannot see.

Each role's pages are visited with data on them (a case, a referral sent and answered, notes, audit
events), in Spanish (the default) and, for the caseworker's pages, in English too.
"""

from __future__ import annotations

import pytest

from .conftest import PHONE_VIEWPORT, sign_in

pytestmark = pytest.mark.browser

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def _axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.fail("The 'axe-playwright-python' package is missing: run ./scripts/bootstrap.", pytrace=False)
    return Axe()


def _violations(axe, page, *, skip_rules: tuple[str, ...] = ()) -> list[str]:
    # Open every <details> (the actions' forms, the category help): their content is checked as shown
    # when opened (Chromium lays a closed one's content out at the page's top, which axe misreads).
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    results = axe.run(page, options=WCAG_AA)
    found = []
    for violation in results.response["violations"]:
        if violation["id"] in skip_rules:
            continue
        nodes = violation["nodes"][:3]
        targets = [f"{', '.join(n['target'])}: {n.get('failureSummary', '')}" for n in nodes]
        rule = f"{violation['id']} ({violation['impact']}): {violation['help']}"
        found.append(f"{page.url}: {rule} — {targets}")
    return found


@pytest.fixture
def referral_with_history(people, make_referral):
    """A case of IOM referred to DP, received, accepted and started, with a note from each side."""
    from accounts.actor import actor_for_user
    from referrals import services

    iom, dp = actor_for_user(people.iom_cw), actor_for_user(people.dp_cw)
    steps = [(iom, "send"), (dp, "receive"), (dp, "accept"), (dp, "start")]
    referral = make_referral(iom, people.dp, categories=("identity", "contact"), path=steps, urgency="urgent")
    services.note_create(actor=dp, referral_id=referral.pk, body="Nota de la Defensoría")
    services.note_create(actor=iom, referral_id=referral.pk, body="Respuesta de la OIM")
    # One more, only sent: it waits in DP's team queue (the "Take" buttons, the queue rows).
    make_referral(iom, people.dp, categories=("identity",), path=[(iom, "send")], urgency="emergency")
    return referral.case, referral


def test_every_kind_of_page_meets_wcag_aa(pages, people, referral_with_history):
    axe = _axe()
    case, referral = referral_with_history
    problems: list[str] = []

    anonymous = pages.new()
    anonymous.goto("/accounts/login/")
    problems += _violations(axe, anonymous)

    caseworker = pages.new()
    sign_in(caseworker, people.iom_cw)
    caseworker_pages = [
        "/",
        "/cases/new/",
        "/cases/search/",
        f"/cases/{case.pk}/",
        f"/cases/{case.pk}/refer/",
        f"/referrals/{referral.pk}/",
        "/notifications/",
        "/preferences/",
        # Issue 12: the lists, the filtered list, my cases, the printable sheet.
        "/referrals/",
        "/referrals/?direction=outbound&status=requested,received&overdue=on",
        "/referrals/?status=nonsense",
        "/cases/",
        f"/referrals/{referral.pk}/print/",
    ]
    for url in caseworker_pages:
        caseworker.goto(url)
        problems += _violations(axe, caseworker)

    receiver = pages.new()
    sign_in(receiver, people.dp_cw)
    with receiver.expect_navigation():
        receiver.locator("form.lang-switch button[name=language]").click()  # the header's switch → English
    for url in ("/", f"/referrals/{referral.pk}/", "/referrals/?direction=inbound&assignee=none"):
        receiver.goto(url)
        assert receiver.locator("html").get_attribute("lang") == "en"
        problems += _violations(axe, receiver)

    supervisor = pages.new()
    sign_in(supervisor, people.iom_sup)
    for url in ("/supervision/workload/", "/supervision/response-times/", "/audit/", f"/cases/{case.pk}/"):
        supervisor.goto(url)
        problems += _violations(axe, supervisor)

    admin = pages.new()
    sign_in(admin, people.iom_admin)
    for url in ("/manage/users/", "/manage/users/new/", "/manage/api-clients/", "/manage/webhooks/"):
        admin.goto(url)
        problems += _violations(axe, admin)

    phone = pages.new(viewport=PHONE_VIEWPORT)
    sign_in(phone, people.iom_cw)
    for url in (
        "/",
        f"/referrals/{referral.pk}/",
        "/referrals/",
        "/cases/",
        f"/referrals/{referral.pk}/print/",
    ):
        phone.goto(url)
        problems += _violations(axe, phone)

    # A DP supervisor: the workload with the team queue to assign from, and the reassign form.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.choices import Role
    from accounts.services import staff_user_create

    from .conftest import PASSWORD

    dp_sup = staff_user_create(
        institution=people.dp, username="dp.sup.axe", role=Role.SUPERVISOR, password=PASSWORD
    )
    TOTPDevice.objects.create(user=dp_sup, name="app", confirmed=True)
    dp_supervisor = pages.new()
    sign_in(dp_supervisor, dp_sup)
    for url in ("/supervision/workload/", f"/referrals/{referral.pk}/", "/referrals/"):
        dp_supervisor.goto(url)
        problems += _violations(axe, dp_supervisor)

    # The API docs (Swagger UI, third-party markup from drf-spectacular-sidecar): everything but its
    # operation headers' nested buttons (Swagger UI's own structure, no stylesheet can change it).
    caseworker.goto("/api/v1/docs/")
    caseworker.wait_for_selector(".swagger-ui .info .title")
    problems += _violations(axe, caseworker, skip_rules=("nested-interactive",))

    assert not problems, "axe-core found WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
