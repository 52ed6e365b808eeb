"""A web form over 1 MiB (DATA_UPLOAD_MAX_MEMORY_SIZE): a 413 page in the user's language that says what
happened and what to do — not a bare 400 — and no traceback in the log; nothing is saved."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from accounts.choices import Role
from referrals.models import Case

MIB = 1024 * 1024


@pytest.fixture
def oversized_case_form():
    return {"given_name": "Ana", "family_name": "Demo", "summary": "x" * (MIB + 10)}


@pytest.mark.parametrize(
    "language,title,advice",
    [
        ("es", "El formulario es demasiado grande", "No se guardó nada"),
        ("en", "The form is too large", "Nothing was saved"),
    ],
)
def test_a_form_over_1_mib_is_a_413_page_in_the_users_language_without_a_traceback(
    iom, make_user, web_client, oversized_case_form, caplog, language, title, advice
):
    user = make_user(iom, Role.CASEWORKER, language=language)
    client = web_client(user)
    with caplog.at_level(logging.DEBUG):
        response = client.post("/cases/new/", oversized_case_form)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert title in page and advice in page
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text
    assert not Case.objects.exists()


def test_the_sign_in_form_over_1_mib_is_a_413_page_too(db, caplog):
    """Before anyone is signed in, with CSRF enforced as for a browser (the CSRF check reads the form)."""
    client = Client(enforce_csrf_checks=True)
    assert client.get("/accounts/login/").status_code == 200
    form = {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, "username": "x", "password": "y" * MIB}
    with caplog.at_level(logging.DEBUG):
        response = client.post("/accounts/login/", form)
    assert response.status_code == 413
    assert "demasiado grande" in response.content.decode()
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_a_form_just_under_the_limit_still_reaches_the_view(iom, make_user, web_client):
    client = web_client(make_user(iom, Role.CASEWORKER))
    response = client.post("/cases/new/", {"given_name": "Ana", "summary": "x" * (MIB - 4096)})
    assert response.status_code in (200, 302)
