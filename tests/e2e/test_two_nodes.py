"""A referral sent on one node and accepted on the other, in a real browser (issue 23, contract §7.4).

Two real gunicorn nodes (``tests/federation/test_two_nodes``: their own databases and keys, paired by
their cards, each relaying its own outbox): IOM's and the Defensoría's. One Chromium, one browser profile,
two tabs — as a person demonstrating ``./scripts/run --federation`` would: both nodes are on 127.0.0.1 and
cookies ignore ports, so each node names its cookies with its own ``COOKIE_PREFIX`` (``iom_``, ``dp_``) and
signing in at one does not sign out at the other.

IOM's caseworker creates a case and refers it to the Defensoría (a remote institution at IOM's node, from
its card) with consent for identity only, and sends it; the outbox delivers the consented projection to
the Defensoría's node. There the Defensoría's caseworker finds it awaiting an answer, opens it (the person's
identity, none of the contact data), and accepts it — IOM's node, its authority, decides. IOM's
caseworker's page then shows it accepted, with the same timeline.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.federation.test_two_nodes import ROOT, Node, _databases, _serving

from .conftest import PASSWORD, TIMEOUT_MS, VIEWPORT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

RELAY = {
    "NOTIFICATIONS_RELAY_THREAD": "true",
    "NOTIFICATIONS_RELAY_INTERVAL": "0.5",
    "FEDERATION_RETRY_BASE_SECONDS": "0.5",
    "FEDERATION_RETRY_MAX_SECONDS": "2",
}
PERSON = {
    "given_name": "Rosa Demo",
    "family_name": "Nodos",
    "date_of_birth": "1991-02-03",
    "phone": "+507 6000-1111",
    "email": "rosa.demo.nodos@example.org",
    "current_location": "Ciudad Demo",
    "document_number": "DEMO-111111",
    "protection_needs": "Necesidades ficticias (demostración).",
}
#: Values of categories the person did not consent to share: never at the Defensoría's node.
WITHHELD = ["6000-1111", "rosa.demo.nodos", "Ciudad Demo", "DEMO-111111", "Necesidades ficticias"]
REASON = "Orientación legal entre dos nodos (demostración)."
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _staff(node: Node, username: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "create_staff_user", node.code, username, "--role", "caseworker",
         "--password-stdin", "--national"],
        cwd=ROOT, env=node.env(), input=PASSWORD + "\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-nodes")
    db_a, db_b = _databases(tmp)
    a = Node("iom", "IOM", db_a, tmp, extra={**RELAY, "COOKIE_PREFIX": "iom_"})
    b = Node("dp", "DP", db_b, tmp, extra={**RELAY, "COOKIE_PREFIX": "dp_"})
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: n.manage("migrate", "--noinput", "-v0"), (a, b)))
    for node in (a, b):
        node.manage("create_institution", node.code, f"{node.code} (nodo)")
        node.card = node.manage("federation_card").stdout.strip().splitlines()[-1]
        _staff(node, f"{node.code.lower()}.caseworker")
    a.manage("federation_peer_add", b.card)  # the Defensoría becomes a remote institution at IOM's node
    b.manage("federation_peer_add", a.card)
    with _serving(a), _serving(b):
        yield a, b


def _open(context, errors: list[str]):
    page = context.new_page()

    def console(msg):  # a 4xx page is logged as a failed load: no script or CSP error
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(f"{page.url}: {msg.text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    return page


def _sign_in(page, node: Node, username: str) -> None:
    page.goto(node.url + "/accounts/login/")
    form = page.locator("#login-form")
    form.locator("[name=username]").fill(username)
    form.locator("[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.url.startswith(node.url) and "/accounts/" not in page.url, page.url


def _click(page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).click()


def _status(page) -> str:
    return page.locator("#referral-status").get_attribute("data-status")


def test_a_referral_sent_on_iom_node_is_accepted_on_the_defensorias(browser, nodes):
    iom_node, dp_node = nodes
    context = browser.new_context(viewport=VIEWPORT, locale="es-PA")
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    try:
        # --- IOM's caseworker, at IOM's node: a case, a referral to the Defensoría, sent ---------------
        iom = _open(context, errors)
        _sign_in(iom, iom_node, "iom.caseworker")
        iom.goto(iom_node.url + "/cases/new/")
        form = iom.locator("#case-form")
        for name, value in PERSON.items():
            form.locator(f"[name={name}]").fill(value)
        form.locator("[name=nationality]").select_option("VEN")
        form.locator("[name=document_type]").select_option("passport")
        _click(iom, "#case-form button[type=submit]")
        assert re.search(rf"/cases/{UUID}/$", iom.url), iom.url

        _click(iom, "a#refer-link")
        form = iom.locator("#referral-form")
        options = form.locator("[name=to_institution] option")
        values = [options.nth(i).get_attribute("value") for i in range(options.count())]
        assert values == ["DP"], values  # the Defensoría, hosted by the other node: the one choice here
        form.locator("[name=to_institution]").select_option("DP")
        form.locator("input[name=services][value=legal_assistance]").check()
        form.locator("input[name=urgency][value=urgent]").check()
        form.locator("[name=reason]").fill(REASON)
        form.locator("input[name=consent_given]").check()
        form.locator("input[name=consent_given_by][value=self]").check()
        form.locator("input[name=consent_method][value=verbal]").check()
        form.locator("input[name=data_categories][value=identity]").check()
        _click(iom, "#referral-form button[type=submit]")
        assert re.search(rf"/referrals/{UUID}/preview/$", iom.url), iom.url
        _click(iom, "form#send-form button[data-action=send]")
        match = re.search(rf"/referrals/({UUID})/$", iom.url)
        assert match, iom.url
        referral_path = f"/referrals/{match.group(1)}/"
        assert _status(iom) == "requested"
        reference = iom.locator("main").inner_text()
        reference = re.search(r"IOM-R-\d{4}-\d{6}", reference).group(0)

        # --- the Defensoría's caseworker, at the Defensoría's node (another tab, same browser) --------
        dp = _open(context, errors)
        _sign_in(dp, dp_node, "dp.caseworker")
        row = dp.locator(f"#awaiting tr[data-referral='{match.group(1)}']")
        deadline = time.monotonic() + 60
        while row.count() == 0:  # the outbox delivers within about a second
            assert time.monotonic() < deadline, "the referral did not reach the Defensoría's node"
            time.sleep(0.5)
            dp.goto(dp_node.url + "/")
        assert reference in row.inner_text()
        with dp.expect_navigation():
            row.locator(f"a[href='{referral_path}']").click()
        assert dp.url == dp_node.url + referral_path
        assert _status(dp) == "requested"
        person = dp.locator("#person")
        assert "Rosa Demo" in person.locator("[data-field=given_name]").inner_text()
        assert "Nodos" in person.locator("[data-field=family_name]").inner_text()
        html = dp.content()
        assert REASON in html
        for value in WITHHELD:  # not consented: not on the page (nor in the node's database)
            assert value not in html, f"{value!r} is on the Defensoría's page"

        _click(dp, "form[data-action=accept] button[data-action=accept]")  # decided by IOM's node
        assert dp.locator(".message-error").count() == 0, dp.locator(".message-error").all_inner_texts()
        assert _status(dp) == "accepted"

        # --- IOM's caseworker, still signed in at IOM's node: accepted there too ----------------------
        iom.goto(iom_node.url + referral_path)
        assert "/accounts/login/" not in iom.url  # the other node's sign-in did not end this session
        assert _status(iom) == "accepted"
        timeline = "#timeline li[data-event]"
        events = lambda page: page.locator(timeline).evaluate_all("els => els.map(e => e.dataset.event)")  # noqa: E731
        assert events(iom)[-2:] == ["send", "accept"] and events(dp)[-2:] == ["send", "accept"]
        names = {cookie["name"] for cookie in context.cookies()}
        assert {"iom_sessionid", "dp_sessionid"} <= names, names
    finally:
        context.close()
    assert not errors, "browser console errors (CSP violations, scripts):\n" + "\n".join(errors)
