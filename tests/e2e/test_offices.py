"""Issue 20 in a real browser (contract §7.2): a referral made for a person in the Darién (PA-5) is routed
by province at ``send`` to the Defensoría's Darién office, taken by that office's caseworker, invisible
(404) to a caseworker of another office, and rerouted by a national supervisor — who then sees the
Chiriquí office's caseworker get it. The referral form offers the offices (nearest province first, a
paused one marked and not selectable); the directory lists them on a phone. A console error or CSP
violation fails the test (``pages`` fixture)."""

from __future__ import annotations

import datetime
import re

import pytest

from .conftest import PASSWORD, PHONE_VIEWPORT, sign_in

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def dp_offices(people):
    """DP's offices in the Darién and Chiriquí (legal assistance, protection), a paused one in Colón, a
    caseworker in each of the first two, and a national DP supervisor (with a TOTP device)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.actor import system_actor
    from accounts.choices import Role
    from accounts.services import office_pause, office_save, staff_user_create

    actor = system_actor(people.dp, "e2e")

    def office(code, name, province):
        saved, _created = office_save(
            institution=people.dp,
            code=code,
            name=name,
            province=province,
            services=["legal_assistance", "protection"],
            languages=["es"],
            actor=actor,
        )
        return saved

    darien = office("DARIEN", "Defensoría Darién (Metetí)", "PA-5")
    chiriqui = office("CHIRIQUI", "Defensoría Chiriquí (David)", "PA-4")
    colon = office("COLON", "Defensoría Colón", "PA-3")
    office_pause(
        office=colon,
        until=datetime.date.today() + datetime.timedelta(days=30),
        reason="Sin abogado este mes",
        actor=actor,
    )

    def user(username, role, office=None):
        return staff_user_create(
            institution=people.dp, username=username, role=role, password=PASSWORD, office=office
        )

    supervisor = user("dp.supervisor", Role.SUPERVISOR)
    TOTPDevice.objects.create(user=supervisor, name="app", confirmed=True)
    return {
        "darien": darien,
        "chiriqui": chiriqui,
        "colon": colon,
        "darien_cw": user("dp.darien.cw", Role.CASEWORKER, darien),
        "chiriqui_cw": user("dp.chiriqui.cw", Role.CASEWORKER, chiriqui),
        "supervisor": supervisor,
    }


def click_and_wait(page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).click()


def test_darien_referral_routed_taken_hidden_and_rerouted(pages, people, dp_offices, make_case, shot):
    from accounts.actor import actor_for_user
    from referrals.models import Referral

    case = make_case(actor_for_user(people.iom_cw), given_name="Rosa Demo", family_name="Ejemplo")

    # --- IOM refers the person, who needs help in the Darién --------------------------------------------
    iom = pages.new()
    sign_in(iom, people.iom_cw)
    iom.goto(f"/cases/{case.pk}/refer/")
    form = iom.locator("#referral-form")
    form.locator("[name=to_institution]").select_option("DP")
    form.locator("input[name=services][value=legal_assistance]").check()
    form.locator("[name=province]").select_option("PA-5")
    offices = form.locator("#office-choices")
    visible = offices.locator("li[data-office]:visible")
    # Nearest first (the Darién), then the others; the paused Colón office marked and not selectable.
    assert visible.first.get_attribute("data-office") == "DP/DARIEN"
    assert set(visible.evaluate_all("items => items.map(i => i.dataset.office)")) == {
        "DP/DARIEN",
        "DP/CHIRIQUI",
        "DP/COLON",
    }
    assert offices.locator("li[data-office='DP/DARIEN'] .near").is_visible()  # "same province"
    assert not offices.locator("li[data-office='DP/CHIRIQUI'] .near").is_visible()
    assert not form.locator("#show-offices").is_visible()  # the list follows the choices by itself
    colon = offices.locator("li[data-office='DP/COLON']")
    assert colon.locator("input[type=radio]").is_disabled()
    assert "Sin abogado este mes" in colon.inner_text()
    # A service no DP office offers hides them all: only "let the province decide" is left.
    form.locator("input[name=services][value=shelter]").check()
    assert offices.locator("li[data-office]:visible").count() == 0
    form.locator("input[name=services][value=shelter]").uncheck()
    assert form.locator("#office-auto").is_checked()  # routed by province at sending
    form.locator("input[name=urgency][value=urgent]").check()
    form.locator("[name=reason]").fill("Necesita asesoría legal en Metetí.")
    form.locator("input[name=consent_given]").check()
    form.locator("input[name=consent_given_by][value=self]").check()
    form.locator("input[name=consent_method][value=verbal]").check()
    form.locator("input[name=data_categories][value=identity]").check()
    shot(iom, "16-referral-form-offices")
    click_and_wait(iom, "#referral-form button[type=submit]")
    assert re.search(rf"/referrals/{UUID}/preview/$", iom.url), iom.url
    click_and_wait(iom, "form#send-form button[data-action=send]")
    match = re.search(rf"/referrals/({UUID})/$", iom.url)
    assert match, iom.url
    referral = Referral.objects.get(pk=match.group(1))
    referral_url = f"/referrals/{referral.pk}/"
    # Routed by province at send: the Darién office holds it.
    assert referral.province == "PA-5"
    assert referral.to_office_id == dp_offices["darien"].pk
    assert iom.locator("#referral-office").get_attribute("data-office") == "DARIEN"
    assert "Darién" in iom.locator("#referral-province").inner_text()

    # --- the Darién caseworker finds it in the office's queue and takes it ------------------------------
    darien = pages.new()
    sign_in(darien, dp_offices["darien_cw"])
    queue = darien.locator("#team-queue")
    assert "Defensoría Darién (Metetí)" in queue.locator("h2").inner_text()
    row = queue.locator(f"tr[data-referral='{referral.pk}']")
    assert row.count() == 1
    assert "Rosa Demo" in row.inner_text()
    with darien.expect_navigation():
        row.locator("button[data-action=take]").click()
    assert darien.locator(".message-success").count() == 1
    assert darien.locator(f"#assigned tr[data-referral='{referral.pk}']").count() == 1
    referral.refresh_from_db()
    assert referral.assignee_id == dp_offices["darien_cw"].pk

    # --- a caseworker of another office has no need to know it: 404, not in any list --------------------
    chiriqui = pages.new()
    sign_in(chiriqui, dp_offices["chiriqui_cw"])
    assert chiriqui.locator(f"tr[data-referral='{referral.pk}']").count() == 0
    response = chiriqui.goto(referral_url)
    assert response.status == 404
    assert "Rosa Demo" not in chiriqui.content()
    chiriqui.goto(f"/referrals/?q={referral.reference}")
    assert chiriqui.locator(f"tr[data-referral='{referral.pk}']").count() == 0

    # --- a national supervisor sees it by office and reroutes it to Chiriquí ---------------------------
    sup = pages.new()
    sign_in(sup, dp_offices["supervisor"])
    sup.goto("/referrals/?direction=inbound&office=DARIEN")
    assert sup.locator(f"#referral-table tr[data-referral='{referral.pk}']").count() == 1
    sup.goto("/referrals/?direction=inbound&office=CHIRIQUI")
    assert sup.locator(f"tr[data-referral='{referral.pk}']").count() == 0
    sup.goto(referral_url)
    route = sup.locator("#route-form")
    options = route.locator("select[name=to_office] option")
    assert route.locator("option[value=DARIEN]").is_disabled()  # where it is
    assert route.locator("option[value=COLON]").is_disabled()  # paused
    assert options.count() == 5  # "—", national intake, the three offices
    route.locator("select[name=to_office]").select_option("CHIRIQUI")
    shot(sup, "17-referral-route")
    with sup.expect_navigation():
        route.locator("button[data-action=route]").click()
    assert sup.locator(".message-error").count() == 0, sup.locator(".message-error").all_inner_texts()
    assert sup.locator(".message-success").count() == 1
    assert sup.locator("#referral-office").get_attribute("data-office") == "CHIRIQUI"
    assert sup.locator("#timeline li[data-event=route]").count() == 1

    # Grants moved: Chiriquí's caseworker now sees it in the office's queue; Darién's no longer does.
    chiriqui.goto("/")
    assert chiriqui.locator(f"#team-queue tr[data-referral='{referral.pk}']").count() == 1
    assert chiriqui.goto(referral_url).status == 200
    assert darien.goto(referral_url).status == 404
    referral.refresh_from_db()
    assert referral.to_office_id == dp_offices["chiriqui"].pk
    assert referral.assignee_id is None  # Darién's caseworker was unassigned

    # A paused office is refused by the core even when the form is bypassed: a clear message, no change.
    token = sup.locator("#route-form input[name=csrfmiddlewaretoken]").input_value()
    refused = sup.request.post(
        f"/referrals/{referral.pk}/route/",
        form={"to_office": "COLON", "csrfmiddlewaretoken": token},
        headers={"Referer": sup.url},
    )
    assert refused.ok
    sup.goto(referral_url)
    referral.refresh_from_db()
    assert referral.to_office_id == dp_offices["chiriqui"].pk

    # The directory, on a phone: the offices with their services and the pause reason.
    phone = pages.new(viewport=PHONE_VIEWPORT)
    sign_in(phone, people.iom_cw)
    phone.goto("/directory/?province=PA-3")
    cards = phone.locator("#offices li[data-office]")
    assert cards.count() == 1
    assert "Sin abogado este mes" in cards.first.inner_text()
    assert "Asistencia legal" in cards.first.inner_text() or "Legal assistance" in cards.first.inner_text()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_VIEWPORT["width"], width  # no sideways scrolling
    shot(phone, "18-directory-phone")


def test_office_pages_meet_wcag_aa(pages, people, dp_offices, make_case):
    """axe-core (WCAG 2.1 A/AA) on the pages of issue 20: the directory (desktop and phone), the referral
    form with its offices (one paused), the referral page with the route form, the supervisors' pages by
    office, and the admin's offices pages."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.actor import actor_for_user
    from accounts.choices import Role
    from accounts.services import staff_user_create
    from referrals import services

    from .test_accessibility import _axe, _violations

    axe = _axe()
    problems: list[str] = []
    sender = actor_for_user(people.iom_cw)
    case = make_case(sender)
    referral = services.referral_create(
        actor=sender,
        case=case,
        to_institution=people.dp,
        services=["legal_assistance"],
        urgency="normal",
        reason="Motivo",
        consent={
            "given": True,
            "given_by": "self",
            "method": "verbal",
            "obtained_at": datetime.datetime.now(datetime.UTC),
            "data_categories": ["identity"],
        },
        province="PA-5",
    )
    services.referral_transition(actor=sender, referral_id=referral.pk, action="send")

    iom = pages.new()
    sign_in(iom, people.iom_cw)
    for url in ("/directory/", "/directory/?accepting=false", f"/cases/{case.pk}/refer/"):
        iom.goto(url)
        problems += _violations(axe, iom)
    phone = pages.new(viewport=PHONE_VIEWPORT)
    sign_in(phone, people.iom_cw)
    for url in ("/directory/", f"/cases/{case.pk}/refer/"):
        phone.goto(url)
        problems += _violations(axe, phone)

    sup = pages.new()
    sign_in(sup, dp_offices["supervisor"])
    for url in (
        f"/referrals/{referral.pk}/",
        "/referrals/?office=DARIEN",
        "/supervision/workload/?office=DARIEN",
        "/supervision/response-times/?office=none",
    ):
        sup.goto(url)
        problems += _violations(axe, sup)

    admin_user = staff_user_create(
        institution=people.dp, username="dp.admin.axe", role=Role.ADMIN, password=PASSWORD
    )
    TOTPDevice.objects.create(user=admin_user, name="app", confirmed=True)
    admin = pages.new()
    sign_in(admin, admin_user)
    for url in ("/manage/offices/", "/manage/offices/new/", "/manage/offices/DARIEN/", "/manage/users/new/"):
        admin.goto(url)
        problems += _violations(axe, admin)

    assert not problems, "axe-core found WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
