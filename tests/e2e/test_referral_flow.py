"""The issue's "done when", end to end in a real browser:

IOM caseworker (Spanish, the default) creates a case with contact data and refers it to DP with consent
for ``identity`` only → the preview shows identity and withholds contact → sent. The DP caseworker switches
to English (remembered across sign-ins), sees the referral awaiting an answer with the time left, opens it
(identity shown, phone and e-mail nowhere in the HTML), accepts, starts and completes it with an outcome.
The IOM caseworker sees "completed" and the outcome. An IOM supervisor (password + TOTP) finds the DP
caseworker's read of the referral in the audit log.

With SCREENSHOTS_DIR set, the main pages are saved as PNGs on the way (see docs/e2e.md).
"""

from __future__ import annotations

import re

import pytest

from .conftest import PHONE_VIEWPORT, sign_in, sign_out

pytestmark = pytest.mark.browser

# An obviously fictitious person: these values are the only personal data in the screenshots.
PERSON = {
    "given_name": "Ana Demo",
    "family_name": "Ejemplo",
    "date_of_birth": "1990-01-01",
    "sex": "female",
    "nationality": "VEN",
    "languages": "es",
    "phone": "+507 6000-0000",
    "email": "ana.demo.ejemplo@example.org",
    "current_location": "Ciudad Demo",
    "document_type": "passport",
    "document_number": "DEMO-000000",
    "protection_needs": "Necesidades de protección ficticias (demostración).",
    "summary": "Caso de demostración con datos ficticios.",
}
#: Values of categories the person did NOT consent to share with DP (contact, documents, protection needs).
WITHHELD_VALUES = [
    "6000-0000",
    "ana.demo.ejemplo",
    "Ciudad Demo",
    "DEMO-000000",
    "DEMO000000",  # as normalized for display
    "Necesidades de protección ficticias",
    "Caso de demostración",  # the case summary is never shared
]
REASON = "Solicitud de orientación legal (demostración)."
OUTCOME = "Orientación legal brindada; caso cerrado (demostración)."
REFERENCE = re.compile(r"IOM-R-\d{4}-\d{6}")  # referrals: IOM-R-2026-000001; cases: IOM-C-…
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


#: One translated word or two per language (locale/es): the language is the one in <html lang>.
SIGN_OUT = {"es": "Cerrar sesión", "en": "Sign out"}


def html_lang(page) -> str:
    return page.locator("html").get_attribute("lang")


def assert_language(page, language: str) -> None:
    assert html_lang(page) == language
    assert page.locator("form.logout-form button").inner_text().strip() == SIGN_OUT[language]


def switch_language(page, expected: str) -> None:
    button = page.locator("form.lang-switch button[name=language]")
    assert button.get_attribute("value") == expected
    with page.expect_navigation():
        button.click()
    assert_language(page, expected)


def click_and_wait(page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).click()


def act(page, action: str, *, text_name: str | None = None, text: str = "") -> None:
    """Press a lifecycle button of the referral page (opening its <details> first when it asks for text)."""
    if text_name:
        details = page.locator(f"details[data-action={action}]")
        details.locator("summary").click()
        details.locator(f"form[data-action={action}] [name={text_name}]").fill(text)
        scope = details
    else:
        scope = page
    with page.expect_navigation():
        scope.locator(f"form[data-action={action}] button[data-action={action}]").click()
    assert page.locator(".message-error").count() == 0, page.locator(".message-error").all_inner_texts()


def status(page) -> str:
    return page.locator("#referral-status").get_attribute("data-status")


def more_referrals_for_the_charts(people) -> None:
    """A few more answered and unanswered referrals (fictitious people), so the dashboard has bars."""
    from accounts.actor import actor_for_user
    from tests.builders import referral_through_services

    iom, dp = actor_for_user(people.iom_cw), actor_for_user(people.dp_cw)
    paths = [
        ["accept"],
        ["accept", "start"],
        ["reject"],
        ["receive"],
        [],
        ["accept", "start", "complete"],
    ]
    for n, path in enumerate(paths, start=2):
        referral_through_services(
            sender=iom,
            to=people.dp,
            subject={"given_name": f"Persona Demo {n}", "family_name": "Ejemplo"},
            summary="",
            requested=("protection",),
            urgency="urgent" if n % 2 else "normal",
            reason="Demostración.",
            path=[(iom, "send")]
            + [(dp, a, "Demostración.") if a in ("reject", "complete") else (dp, a) for a in path],
        )


def test_refer_to_dp_answer_complete_and_audit(pages, people, shot):
    from referrals.models import Referral

    # --- IOM caseworker: sign in (Spanish, the default), create the case ---------------------------------
    iom = pages.new()
    iom.goto("/")
    assert "/accounts/login/" in iom.url
    assert html_lang(iom) == "es"
    assert iom.locator("main h1").inner_text().strip() == "Iniciar sesión"
    shot(iom, "01-login")
    sign_in(iom, people.iom_cw)
    assert iom.url.endswith("/")
    assert_language(iom, "es")
    assert "pendientes de respuesta" in iom.locator("#awaiting h2").inner_text()

    click_and_wait(iom, "main a[href='/cases/new/']")  # the start page's "new case" button
    form = iom.locator("#case-form")
    for name, value in PERSON.items():
        if name in ("sex", "document_type", "nationality", "languages"):
            continue
        form.locator(f"[name={name}]").fill(value)
    # Country and languages are picked by name (issue 12); the values stay ISO codes.
    form.locator("[name=nationality]").select_option(PERSON["nationality"])
    form.locator("[name=languages]").select_option([PERSON["languages"]])
    form.locator("[name=sex]").select_option(PERSON["sex"])
    form.locator("[name=document_type]").select_option(PERSON["document_type"])
    shot(iom, "03-case-form")
    click_and_wait(iom, "#case-form button[type=submit]")
    assert re.search(rf"/cases/{UUID}/$", iom.url), iom.url
    person = iom.locator("#person")
    assert "Ana Demo" in person.locator("[data-field=given_name]").inner_text()
    assert "6000-0000" in person.locator("[data-field=phone]").inner_text()  # the owner sees everything

    # --- refer it to DP, consent for identity only ---------------------------------------------------
    click_and_wait(iom, "a#refer-link")
    form = iom.locator("#referral-form")
    select = form.locator("[name=to_institution]")
    options = select.locator("option")
    labels = options.all_inner_texts()
    dp_index = next(i for i, label in enumerate(labels) if "DP" in label or people.dp.name in label)
    select.select_option(options.nth(dp_index).get_attribute("value"))
    form.locator("input[name=services][value=legal_assistance]").check()
    form.locator("input[name=urgency][value=normal]").check()
    form.locator("[name=reason]").fill(REASON)
    form.locator("input[name=consent_given]").check()
    form.locator("input[name=consent_given_by][value=self]").check()
    form.locator("input[name=consent_method][value=verbal]").check()
    assert form.locator("[name=consent_obtained_at]").input_value()  # prefilled with "now"
    form.locator("input[name=data_categories][value=identity]").check()
    for other in ("contact", "documents", "protection_needs"):
        assert not form.locator(f"input[name=data_categories][value={other}]").is_checked()
    shot(iom, "04-referral-form")
    click_and_wait(iom, "#referral-form button[type=submit]")

    # --- the preview: identity shared, contact withheld ----------------------------------------------
    assert re.search(rf"/referrals/{UUID}/preview/$", iom.url), iom.url
    shared = iom.locator("#shared")
    assert "Ana Demo" in shared.locator("[data-field=given_name]").inner_text()
    assert "Ejemplo" in shared.locator("[data-field=family_name]").inner_text()
    assert shared.locator("[data-field=phone]").count() == 0
    assert shared.locator("[data-field=email]").count() == 0
    withheld = iom.locator("#withheld")
    assert withheld.locator("[data-field=phone]").count() == 1
    assert withheld.locator("[data-field=email]").count() == 1
    preview_html = iom.content()
    for value in WITHHELD_VALUES:
        assert value not in preview_html, f"{value!r} is on the preview"
    shot(iom, "05-preview")
    click_and_wait(iom, "form#send-form button[data-action=send]")
    match = re.search(rf"/referrals/({UUID})/$", iom.url)
    assert match, iom.url
    referral = Referral.objects.get(pk=match.group(1))
    referral_url = f"/referrals/{referral.pk}/"
    assert status(iom) == "requested"
    assert REFERENCE.fullmatch(referral.reference)

    iom.goto("/")
    assert iom.locator(f"#outbound tr[data-referral='{referral.pk}']").count() == 1
    assert referral.reference in iom.locator("#outbound").inner_text()
    assert iom.locator("#my-cases a").count() == 1
    shot(iom, "02-home")

    # --- DP caseworker: switch to English, remembered across sign-ins --------------------------------
    dp = pages.new()
    sign_in(dp, people.dp_cw)
    assert_language(dp, "es")
    switch_language(dp, "en")
    people.dp_cw.refresh_from_db()
    assert people.dp_cw.language == "en"
    sign_out(dp)
    sign_in(dp, people.dp_cw)
    assert_language(dp, "en")
    assert dp.locator("form.lang-switch button[name=language]").get_attribute("value") == "es"

    # The start page: the referral awaits an answer, with the time left.
    dp.goto("/")
    row = dp.locator(f"#awaiting tr[data-referral='{referral.pk}']")
    assert row.count() == 1
    assert "awaiting an answer" in dp.locator("#awaiting h2").inner_text()
    assert referral.reference in row.inner_text()
    assert re.search(r"\d", row.locator(".time-left").inner_text()), row.locator(".time-left").inner_text()
    assert "overdue" not in (row.locator(".time-left").get_attribute("class") or "")
    shot(dp, "02b-home-receiver")
    phone = pages.new(viewport=PHONE_VIEWPORT)
    phone.context.add_cookies(dp.context.cookies())
    phone.goto("/")
    assert phone.locator(f"#awaiting tr[data-referral='{referral.pk}']").count() == 1
    shot(phone, "02c-home-phone")
    phone.context.close()

    # The referral page: identity, never the contact data.
    with dp.expect_navigation():
        row.locator(f"a[href='{referral_url}']").click()
    assert dp.url.endswith(referral_url)
    assert status(dp) == "requested"
    person = dp.locator("#person")
    assert "Ana Demo" in person.locator("[data-field=given_name]").inner_text()
    assert "Ejemplo" in person.locator("[data-field=family_name]").inner_text()
    for field in ("phone", "email", "current_location", "document_number", "protection_needs"):
        assert person.locator(f"[data-field={field}]").count() == 0, field
    html = dp.content()
    for value in WITHHELD_VALUES:
        assert value not in html, f"{value!r} is on the receiver's page"
    assert REASON in html
    assert dp.locator("form[data-action=accept] button[data-action=accept]").count() == 1
    assert dp.locator("details[data-action=reject]").count() == 1
    shot(dp, "06-referral-receiver")

    act(dp, "accept")
    assert status(dp) == "accepted"
    act(dp, "start")
    assert status(dp) == "in-progress"
    dp.locator("form#note-form [name=body]").fill("Cita agendada (demostración).")
    click_and_wait(dp, "form#note-form button[type=submit]")
    assert "Cita agendada" in dp.locator("#notes").inner_text()
    act(dp, "complete", text_name="outcome", text=OUTCOME)
    assert status(dp) == "completed"
    assert OUTCOME in dp.locator("#outcome").inner_text()
    events = dp.locator("#timeline li[data-event]").evaluate_all("els => els.map(e => e.dataset.event)")
    assert events[-3:] == ["accept", "start", "complete"]
    html = dp.content()
    for value in WITHHELD_VALUES:
        assert value not in html, f"{value!r} is on the receiver's page"
    shot(dp, "06c-referral-receiver-completed")

    # --- IOM caseworker: completed, with the outcome -------------------------------------------------
    iom.goto(referral_url)
    assert status(iom) == "completed"
    assert OUTCOME in iom.locator("#outcome").inner_text()
    assert "Cita agendada" in iom.locator("#notes").inner_text()
    shot(iom, "06b-referral-sender")

    # --- IOM supervisor (password + TOTP): the DP caseworker's read is in the audit log ---------------
    sup = pages.new()
    sign_in(sup, people.iom_sup)
    sup.goto("/audit/")
    filters = sup.locator("form.filters")
    filters.locator("[name=object_id]").fill(str(referral.pk))
    filters.locator("[name=actor]").fill(people.dp_cw.username)
    filters.locator("[name=action]").fill("referral.viewed")
    with sup.expect_navigation():
        filters.locator("button[type=submit]").click()
    assert f"object_id={referral.pk}" in sup.url
    rows = sup.locator("#audit-events tr[data-action='referral.viewed']")
    assert rows.count() >= 1
    texts = rows.all_inner_texts()
    assert all(people.dp_cw.username in text for text in texts), texts
    assert sup.locator("#audit-events tbody tr").count() == rows.count()  # the filter left only those
    shot(sup, "07-audit-log")

    sup.goto("/supervision/response-times/")
    assert sup.locator("main h1").count() == 1
    if shot.enabled:
        more_referrals_for_the_charts(people)
        sup.goto("/supervision/response-times/?direction=outbound")
        shot(sup, "08-response-times")

    # --- IOM admin (password + TOTP): the users page -------------------------------------------------
    admin = pages.new()
    sign_in(admin, people.iom_admin)
    admin.goto("/manage/users/")
    users_text = admin.locator("main").inner_text()
    for user in (people.iom_cw, people.iom_sup, people.iom_admin):
        assert user.username in users_text
    assert people.dp_cw.username not in users_text  # another institution's staff
    shot(admin, "09-users")
