"""Browser tests: a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API
against pytest-django's ``live_server`` (transactional database: SQLite, or PostgreSQL via DATABASE_URL).

No Playwright-downloaded browser is used: ``CHROMIUM`` may point at another binary. If Chromium is missing
the tests FAIL (``scripts/test-prepare`` installs it); they are never skipped.

``SCREENSHOTS_DIR=docs/screenshots`` makes the flow save full-page PNGs of the main pages there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.otp import totp_code  # noqa: F401 — the browser suites import it from here

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Demo-e2e-clave-2026"
VIEWPORT = {"width": 1280, "height": 800}
PHONE_VIEWPORT = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000


# --- the browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser():
    """One Chromium for this folder's tests. Package scope: Playwright's sync API keeps an asyncio loop
    running in the test thread while it is started, so it is stopped before the rest of the suite runs."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it. Run ./scripts/test-prepare "
            "(installs the Debian package 'chromium'), or set CHROMIUM=/path/to/chromium.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The 'playwright' Python package is missing: run ./scripts/bootstrap.", pytrace=False)
    # With that loop running, Django refuses ORM calls from the test thread (fixtures, assertions on the
    # database) as "called from an async context" unless this is set; restored afterwards.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            except Exception as exc:  # noqa: BLE001 - turned into a clear failure
                pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
            yield browser
            browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


class Pages:
    """Opens browser contexts (one per person: separate cookies) that fail on any console/CSP error."""

    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.contexts = []
        self.errors: list[str] = []

    def new(self, viewport=VIEWPORT):
        context = self.browser.new_context(base_url=self.base_url, viewport=viewport, locale="es-PA")
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: self._console(page, msg))
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    def _console(self, page, msg):
        # A 4xx page (404, the 429 lockout) is logged as a failed load: that is no script or CSP error.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(f"{page.url}: {msg.text}")

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser, live_server):
    """``pages.new()`` → a fresh page (own cookies) on the live server; console errors fail the test."""
    opened = Pages(browser, live_server.url)
    yield opened
    errors = list(opened.errors)
    opened.close()
    assert not errors, "browser console errors (CSP violations, scripts):\n" + "\n".join(errors)


@pytest.fixture
def page(pages):
    return pages.new()


# --- screenshots ------------------------------------------------------------------------------------


@pytest.fixture
def shot():
    """``shot(page, "name")`` saves ``$SCREENSHOTS_DIR/name.png`` (full page) when the variable is set."""
    directory = os.environ.get("SCREENSHOTS_DIR")

    def take(page, name: str, *, full_page: bool = True) -> None:
        if not directory:
            return
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        page.wait_for_load_state("load")
        page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring
        page.screenshot(path=str(path / f"{name}.png"), full_page=full_page, animations="disabled")

    take.enabled = bool(directory)
    return take


# --- people and sign-in -----------------------------------------------------------------------------


@pytest.fixture
def people(transactional_db):
    """IOM and DP with a caseworker each, an IOM supervisor and an IOM admin (both with a TOTP device)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.choices import Role
    from accounts.services import institution_create, staff_user_create

    iom, _ = institution_create(code="IOM", name="Organización Internacional para las Migraciones")
    dp, _ = institution_create(code="DP", name="Defensoría del Pueblo")

    def user(institution, username, role, **kwargs):
        return staff_user_create(
            institution=institution,
            username=username,
            role=role,
            password=PASSWORD,
            email=f"{username}@example.org",
            **kwargs,
        )

    data = {
        "iom": iom,
        "dp": dp,
        "iom_cw": user(iom, "iom.caseworker", Role.CASEWORKER),
        "dp_cw": user(dp, "dp.caseworker", Role.CASEWORKER),
        "iom_sup": user(iom, "iom.supervisor", Role.SUPERVISOR),
        "iom_admin": user(iom, "iom.admin", Role.ADMIN),
    }
    for key in ("iom_sup", "iom_admin"):
        TOTPDevice.objects.create(user=data[key], name="app", confirmed=True)
    return SimpleNamespace(**data)


def sign_in(page, user, password: str = PASSWORD, *, second_factor: bool | None = None) -> None:
    """Sign in through the login page (and the TOTP page for supervisors and admins); ends on a page
    other than the sign-in steps."""
    page.goto("/accounts/login/")
    form = page.locator("#login-form")
    form.locator("[name=username]").fill(user.username)
    form.locator("[name=password]").fill(password)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    if second_factor is None:
        second_factor = user.requires_2fa
    if second_factor:
        assert re.search(r"/accounts/otp/(\?|$)", page.url), page.url
        otp = page.locator("#otp-form")
        otp.locator("[name=otp_token]").fill(totp_code(user))
        with page.expect_navigation():
            otp.locator("button[type=submit]").click()
    assert "/accounts/login/" not in page.url and "/accounts/otp/" not in page.url, (
        f"sign-in of {user.username} did not complete: {page.url}"
    )


def sign_out(page) -> None:
    with page.expect_navigation():
        page.locator("form.logout-form button").click()
    assert "/accounts/login/" in page.url
