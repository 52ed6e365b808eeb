"""Shared fixtures of the web UI's tests: staff of every role and a signed-in browser (Django test client)
for each, with the second factor already satisfied when the role needs it; and an accessibility check.

The institutions ``iom``, ``dp`` and ``third`` and the ``iom_caseworker`` / ``dp_caseworker`` users come
from ``tests/conftest.py``. Every user's password is ``PASSWORD``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.choices import Role
from accounts.models import User
from tests.otp import confirmed_device, otp_code  # noqa: F401 — the suites import them from here
from web.middleware import needs_second_factor

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password


# --- second factor -------------------------------------------------------------------------------------


def logged_in_client(user) -> Client:
    """A client signed in as ``user`` (session), the TOTP step done if the user needs it."""
    client = Client()
    client.force_login(user)
    if needs_second_factor(user):
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = confirmed_device(user).persistent_id
        session.save()
    return client


def sign_in_for_real(user, password: str = PASSWORD) -> Client:
    """A client signed in through the real pages: ``/accounts/login/``, then ``/accounts/otp/`` if needed."""
    client = Client()
    device = confirmed_device(user) if needs_second_factor(user) else None
    response = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert response.status_code == 302, "sign-in refused"
    if device is not None:
        assert response["Location"].startswith("/accounts/otp/")
        response = client.post("/accounts/otp/", {"otp_token": otp_code(device)})
        assert response.status_code == 302, "TOTP step refused"
        assert not response["Location"].startswith("/accounts/otp")
    return client


@pytest.fixture
def web_client():
    """``web_client(user)`` → a Django test client signed in as ``user`` with the second factor done."""
    return logged_in_client


@pytest.fixture
def web_sign_in():
    """``web_sign_in(user)`` → a client signed in through the real password and TOTP pages."""
    return sign_in_for_real


# --- staff of every role -------------------------------------------------------------------------------


@pytest.fixture
def third_supervisor(third, make_user):
    return make_user(third, Role.SUPERVISOR, username="third.supervisor")


@pytest.fixture
def superuser(db):
    """An operator: superuser without an institution (the Django admin only)."""
    return User.objects.create_superuser(username="root.operator", email="ops@example.org", password=PASSWORD)


@pytest.fixture
def iom_caseworker_client(iom_caseworker):
    return logged_in_client(iom_caseworker)


@pytest.fixture
def dp_caseworker_client(dp_caseworker):
    return logged_in_client(dp_caseworker)


@pytest.fixture
def iom_supervisor_client(iom_supervisor):
    return logged_in_client(iom_supervisor)


@pytest.fixture
def dp_supervisor_client(dp_supervisor):
    return logged_in_client(dp_supervisor)


@pytest.fixture
def third_supervisor_client(third_supervisor):
    return logged_in_client(third_supervisor)


@pytest.fixture
def iom_admin_client(iom_admin):
    return logged_in_client(iom_admin)


@pytest.fixture
def dp_admin_client(dp_admin):
    return logged_in_client(dp_admin)


@pytest.fixture
def superuser_client(superuser):
    return logged_in_client(superuser)


# --- accessibility and CSP checks on a page's HTML --------------------------------------------------


class _PageAudit(HTMLParser):
    FORM_CONTROLS = {"input", "select", "textarea"}
    NOT_LABELLED = {"hidden", "submit", "button", "reset", "image"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.headings: list[int] = []
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, dict]] = []
        self.label_depth = 0
        self.in_svg = 0
        self.ids: set[str] = set()
        self.described_by: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for target in (a.get("aria-describedby") or "").split() + (a.get("aria-labelledby") or "").split():
            self.described_by.append((tag, target))
        for name in a:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag}> has a {name}= attribute (CSP)")
        if tag == "style":
            self.problems.append("<style> element (CSP)")
        if tag == "script" and not a.get("src"):
            self.problems.append("inline <script> (CSP)")
        if tag == "svg":
            self.in_svg += 1
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.label_for.add(a["for"])
        if tag == "th" and "scope" not in a:
            self.problems.append("<th> without scope")
        labelled = self.label_depth > 0 or a.get("aria-label") or a.get("aria-labelledby")
        if tag in self.FORM_CONTROLS and a.get("type", "") not in self.NOT_LABELLED and not labelled:
            self.controls.append((tag, a))
        if tag == "img" and "alt" not in a:
            self.problems.append("<img> without alt")

    def handle_endtag(self, tag):
        if tag == "label":
            self.label_depth = max(self.label_depth - 1, 0)
        if tag == "svg":
            self.in_svg -= 1

    def finish(self) -> list[str]:
        for tag, target in self.described_by:
            if target not in self.ids:
                self.problems.append(
                    f"<{tag}> refers to a missing id {target!r} (aria-describedby/-labelledby)"
                )
        for tag, a in self.controls:
            if a.get("id") not in self.label_for:
                self.problems.append(f"<{tag} name={a.get('name')!r}> has no label")
        if self.headings.count(1) != 1:
            self.problems.append(f"{self.headings.count(1)} <h1> on the page")
        if self.headings and self.headings[0] != 1:
            self.problems.append("the first heading is not an <h1>")
        for before, after in zip(self.headings, self.headings[1:], strict=False):
            if after > before + 1:
                self.problems.append(f"heading level jumps from h{before} to h{after}")
        return self.problems


def page_problems(html: str) -> list[str]:
    """Accessibility and CSP problems of a page: unlabelled fields, <th> without scope, one <h1> and no
    skipped heading level, no inline script, style or event handler, and no ``aria-describedby`` /
    ``aria-labelledby`` pointing at an id that is not on the page (a help text screen readers miss)."""
    parser = _PageAudit()
    parser.feed(html)
    parser.close()
    return parser.finish()


@pytest.fixture
def assert_accessible():
    """``assert_accessible(response)``: a 200 HTML page without the problems ``page_problems`` finds."""

    def check(response):
        assert response.status_code == 200, response.status_code
        problems = page_problems(response.content.decode())
        assert not problems, problems

    return check
