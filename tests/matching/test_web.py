"""The web door of matching: the case form's duplicate check, the search by name and date of birth, the
case page's possible duplicates, and linking cases as the same person (supervisors undo), all audited."""

from __future__ import annotations

import re

import pytest

from accounts.choices import Role
from audit.models import AuditEvent
from matching.models import CaseLink
from referrals.models import Case
from tests.web.conftest import logged_in_client
from tests.web.test_caseworker_pages import PERSON, client_for, create_case


def html(response) -> str:
    return response.content.decode()


@pytest.fixture
def cw(iom, dp, make_user):
    return make_user(iom, Role.CASEWORKER, username="match.cw", language="es")


@pytest.fixture
def supervisor(iom, make_user):
    return make_user(iom, Role.SUPERVISOR, username="match.sup", language="es")


#: The same person as PERSON, written at another registration point.
AGAIN = {
    **PERSON,
    "given_name": "ANA",
    "family_name": "Ejemplo",
    "date_of_birth": "1991-04-03",
    "document_number": "",
    "document_type": "none",
}


def test_duplicate_check_shows_possible_matches_with_reasons_and_asks_to_confirm(cw):
    client = client_for(cw)
    first = create_case(client)
    response = client.post("/cases/new/", AGAIN)
    assert response.status_code == 200
    page = html(response)
    box = re.search(r'<div class="warning" role="alert" id="duplicates">(.*?)</div>', page, re.S).group(1)
    assert first.reference in box
    assert "nombre similar" in box and "fecha de nacimiento cercana" in box  # reasons, translated
    assert "Ejemplo Prueba" not in box  # the warning shows references, not the other case's names
    assert Case.objects.count() == 1
    event = AuditEvent.objects.filter(action="case.searched").latest("sequence")
    assert event.detail["by"] == "duplicate_check" and "Ana" not in str(event.detail)
    second = create_case(client, **AGAIN, confirm_not_duplicate="on")
    assert second.pk != first.pk and Case.objects.count() == 2


def test_a_different_person_is_created_without_a_question(cw):
    client = client_for(cw)
    create_case(client)
    create_case(
        client,
        given_name="Keiber",
        family_name="Villalobos",
        document_number="K-1",
        date_of_birth="1970-01-02",
    )
    assert Case.objects.count() == 2


def test_search_by_name_and_date_of_birth_is_a_post_and_lists_references(cw, dp, make_user):
    client = client_for(cw)
    case = create_case(client)
    response = client.post(
        "/cases/search/", {"given_name": "ana", "family_name": "EJEMPLO", "date_of_birth": "1991-03-04"}
    )
    page = html(response)
    section = re.search(r'<section id="matches".*?</section>', page, re.S).group(0)
    assert case.reference in section and "Ana Demo Ejemplo Prueba" in section
    assert "probablemente la misma persona" in section
    searched = AuditEvent.objects.filter(action="case.searched").latest("sequence")
    assert searched.detail["by"] == "name" and "Ana" not in str(searched.detail)
    viewed = AuditEvent.objects.filter(action="case.viewed", object_id=str(case.pk)).latest("sequence")
    assert viewed.detail == {"page": "search"}
    # Another institution's caseworker finds nothing.
    other = client_for(make_user(dp, Role.CASEWORKER, username="match.dp"))
    page = html(other.post("/cases/search/", {"given_name": "Ana", "family_name": "Ejemplo"}))
    assert case.reference not in page and "No hay posibles coincidencias" in page


def test_search_needs_a_document_or_both_names(cw):
    page = html(client_for(cw).post("/cases/search/", {"given_name": "Ana"}))
    assert 'id="matches"' not in page and 'id="results"' not in page
    assert "form-errors" in page


def test_case_page_shows_possible_duplicates_and_links_them(cw, supervisor):
    client = client_for(cw)
    first = create_case(client)
    second = create_case(client, **AGAIN, confirm_not_duplicate="on")
    page = html(client.get(f"/cases/{second.pk}/"))
    block = re.search(r'<ul id="possible-duplicates">(.*?)</ul>', page, re.S).group(1)
    assert first.reference in block and "Enlazar como la misma persona" in block

    response = client.post(f"/cases/{second.pk}/links/", {"other": str(first.pk)})
    assert response.status_code == 302
    link = CaseLink.objects.get()
    linked = AuditEvent.objects.filter(action="case.linked").latest("sequence")
    assert set(linked.detail["cases"]) == {first.reference, second.reference}
    # Both cases show the link; the duplicate is no longer proposed.
    for case, other in ((first, second), (second, first)):
        page = html(client.get(f"/cases/{case.pk}/"))
        assert other.reference in re.search(r'<ul id="linked-cases">(.*?)</ul>', page, re.S).group(1)
        assert 'id="possible-duplicates"' not in page
        assert "Deshacer el enlace" not in page  # caseworkers cannot undo it

    # A caseworker cannot undo the link; a supervisor can.
    response = client.post(f"/cases/{first.pk}/links/{link.pk}/unlink/")
    assert response.status_code == 403
    boss = logged_in_client(supervisor)
    assert "Deshacer el enlace" in html(boss.get(f"/cases/{first.pk}/"))
    assert boss.post(f"/cases/{first.pk}/links/{link.pk}/unlink/").status_code == 302
    link.refresh_from_db()
    assert link.unlinked_at is not None and link.unlinked_by == supervisor
    assert AuditEvent.objects.filter(action="case.unlinked", object_id=str(link.case_a_id)).exists()
    assert 'id="linked-cases"' not in html(client.get(f"/cases/{first.pk}/"))


def test_links_only_between_cases_the_user_may_see(cw, iom, dp, make_user):
    client = client_for(cw)
    mine = create_case(client)
    other_cw = make_user(iom, Role.CASEWORKER, username="match.cw2")
    theirs = create_case(client_for(other_cw))
    assert client.post(f"/cases/{mine.pk}/links/", {"other": str(theirs.pk)}).status_code == 404
    assert client.post(f"/cases/{mine.pk}/links/", {"other": "not-a-uuid"}).status_code == 404
    assert not CaseLink.objects.exists()


def test_linking_a_case_to_itself_or_twice_is_refused(cw):
    client = client_for(cw)
    first = create_case(client)
    second = create_case(client, **AGAIN, confirm_not_duplicate="on")
    client.post(f"/cases/{first.pk}/links/", {"other": str(first.pk)})
    assert not CaseLink.objects.exists()
    client.post(f"/cases/{first.pk}/links/", {"other": str(second.pk)})
    client.post(f"/cases/{second.pk}/links/", {"other": str(first.pk)})
    assert CaseLink.objects.count() == 1
    assert AuditEvent.objects.filter(action="case.linked").count() == 1
