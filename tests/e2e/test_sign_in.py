"""Sign-in in the browser: anonymous visitors land on the sign-in page, the lockout after wrong passwords,
logout by POST only, and the TOTP step of a supervisor."""

from __future__ import annotations

import time

import pytest

from .conftest import PASSWORD, sign_in, totp_code

pytestmark = pytest.mark.browser


def test_an_anonymous_visit_to_the_start_page_shows_the_sign_in_page(page):
    response = page.goto("/")
    assert response.ok
    assert page.url.endswith("/accounts/login/?next=/")
    assert page.locator("#login-form [name=username]").is_visible()
    assert page.locator("#login-form [name=password]").is_visible()
    assert page.locator("html").get_attribute("lang") == "es"  # the default language
    assert page.locator("form.logout-form").count() == 0


def test_five_wrong_passwords_lock_the_account(page, people):
    from django.conf import settings

    limit = settings.AXES_FAILURE_LIMIT
    page.goto("/accounts/login/")
    for attempt in range(1, limit + 1):
        form = page.locator("#login-form")
        form.locator("[name=username]").fill(people.iom_cw.username)
        form.locator("[name=password]").fill(f"wrong-password-{attempt}")
        with page.expect_navigation() as navigation:
            form.locator("button[type=submit]").click()
        response = navigation.value
        if attempt < limit:
            assert response.status == 200, attempt
            assert page.locator("#login-form").count() == 1
            assert page.locator(".errorlist, .error, .message-error, [role=alert]").count() >= 1
    assert response.status == 429
    assert page.locator("#login-form").count() == 0
    assert page.locator("a[href='/accounts/login/']").count() >= 1  # "Back to sign in"

    # Locked: even the right password is refused now.
    page.goto("/accounts/login/")
    form = page.locator("#login-form")
    form.locator("[name=username]").fill(people.iom_cw.username)
    form.locator("[name=password]").fill(PASSWORD)
    with page.expect_navigation() as navigation:
        form.locator("button[type=submit]").click()
    assert navigation.value.status == 429
    assert page.locator("form.logout-form").count() == 0


def test_logout_is_a_post(page, people):
    sign_in(page, people.iom_cw)
    # A link or an image must not sign anyone out (the request shares the page's cookies; an empty 405
    # body is a navigation error in Chromium, hence no page.goto).
    response = page.request.get("/accounts/logout/", max_redirects=0)
    assert response.status == 405
    page.goto("/")
    assert page.locator("form.logout-form button").count() == 1  # still signed in
    with page.expect_navigation():
        page.locator("form.logout-form button").click()
    assert "/accounts/login/" in page.url
    page.goto("/")
    assert "/accounts/login/" in page.url  # signed out for real


def test_a_supervisor_needs_the_code_from_the_app(page, people):
    page.goto("/accounts/login/")
    form = page.locator("#login-form")
    form.locator("[name=username]").fill(people.iom_sup.username)
    form.locator("[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert "/accounts/otp/" in page.url
    page.goto("/audit/")  # nothing else before the second step
    assert "/accounts/otp/" in page.url

    good = totp_code(people.iom_sup)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    otp = page.locator("#otp-form")
    otp.locator("[name=otp_token]").fill(wrong)
    with page.expect_navigation():
        otp.locator("button[type=submit]").click()
    assert "/accounts/otp/" in page.url
    assert page.locator("#otp-form .error").count() == 1

    time.sleep(1.1)  # django-otp throttles the device for a second after a wrong code
    otp = page.locator("#otp-form")
    otp.locator("[name=otp_token]").fill(totp_code(people.iom_sup))
    with page.expect_navigation():
        otp.locator("button[type=submit]").click()
    assert page.url.endswith("/audit/")
    assert page.locator("form.logout-form button").count() == 1


def test_the_sign_in_page_offers_english_before_signing_in(page):
    page.goto("/accounts/login/")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("main h1").inner_text().strip() == "Iniciar sesión"
    with page.expect_navigation():
        page.locator("form.lang-choice button[value=en]").click()
    assert "/accounts/login/" in page.url
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("main h1").inner_text().strip() == "Sign in"
    assert page.locator("#login-form").count() == 1


def test_a_new_supervisor_enrols_the_authenticator_app_on_first_sign_in(page, people):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.choices import Role
    from accounts.services import staff_user_create

    newcomer = staff_user_create(
        institution=people.iom, username="iom.supervisor2", role=Role.SUPERVISOR, password=PASSWORD
    )
    page.goto("/accounts/login/")
    form = page.locator("#login-form")
    form.locator("[name=username]").fill(newcomer.username)
    form.locator("[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert "/accounts/otp/setup/" in page.url
    assert page.locator(".qr-image svg").count() == 1
    secret = page.locator("code.secret").inner_text().replace(" ", "").strip()
    device = TOTPDevice.objects.get(user=newcomer, confirmed=False)
    assert secret in device.config_url  # the key shown is the device's key (base32)

    otp = page.locator("#otp-form")
    otp.locator("[name=otp_token]").fill(totp_code(newcomer, confirmed=False))
    with page.expect_navigation():
        otp.locator("button[type=submit]").click()
    assert page.url.endswith("/")
    assert page.locator("form.logout-form button").count() == 1
    device.refresh_from_db()
    assert device.confirmed
