"""Issue 13 in a real browser: the case form's duplicate check.

An IOM caseworker registers a person; later the same person is registered again as another registration
point writes them (accents dropped, second surname cut, day and month swapped). The form stops before
creating a second case and shows the existing case's reference with the reasons, in Spanish; the caseworker
opens the case page, where the new case offers the first as a possible duplicate, and links them; both
case pages show the link.
"""

from __future__ import annotations

import re

import pytest

from .conftest import sign_in

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

FIRST = {
    "given_name": "Yeferson Demo",
    "family_name": "Vásquez Ejemplo",
    "date_of_birth": "1994-03-07",
    "nationality": "VEN",
}
AGAIN = {
    "given_name": "JEFFERSON DEMO",
    "family_name": "VAZQUEZ",
    "date_of_birth": "1994-07-03",
    "nationality": "VEN",
}


def fill_case_form(page, person: dict) -> None:
    page.goto("/cases/new/")
    form = page.locator("#case-form")
    for name, value in person.items():
        if name != "nationality":
            form.locator(f"[name={name}]").fill(value)
    form.locator("[name=nationality]").select_option(person["nationality"])
    form.locator("[name=sex]").select_option("male")


def submit(page) -> None:
    with page.expect_navigation():
        page.locator("#case-form button[type=submit]").click()


def test_duplicate_check_on_the_case_form(pages, people, shot):
    page = pages.new()
    sign_in(page, people.iom_cw)

    fill_case_form(page, FIRST)
    submit(page)
    assert re.search(rf"/cases/{UUID}/$", page.url), page.url
    first_url = page.url
    first_reference = re.search(r"IOM-\d{4}-\d{6}", page.locator("h1").inner_text()).group(0)

    # The same person, written otherwise: the form stops and shows the possible duplicate with reasons.
    fill_case_form(page, AGAIN)
    submit(page)
    assert page.url.endswith("/cases/new/")
    warning = page.locator("#duplicates")
    assert warning.is_visible()
    text = warning.inner_text()
    assert first_reference in text
    assert "nombre similar" in text and "fecha de nacimiento cercana" in text and "misma nacionalidad" in text
    assert "Vásquez" not in text  # references and reasons, not the other case's data
    shot(page, "13-duplicate-check")

    # Confirming creates the second case anyway.
    page.locator("#case-form [name=confirm_not_duplicate]").check()
    submit(page)
    assert re.search(rf"/cases/{UUID}/$", page.url) and page.url != first_url

    # Its page proposes the first case as a possible duplicate; linking shows on both pages.
    proposals = page.locator("#possible-duplicates")
    assert first_reference in proposals.inner_text()
    with page.expect_navigation():
        proposals.locator("button[type=submit]").first.click()
    assert first_reference in page.locator("#linked-cases").inner_text()
    second_reference = re.search(r"IOM-\d{4}-\d{6}", page.locator("h1").inner_text()).group(0)
    page.goto(first_url)
    assert second_reference in page.locator("#linked-cases").inner_text()
