"""The caseworkers' pages through Django's test client on the real database: start page, case form with
the duplicate check, document search, refer → preview → send, the referral page's actions, notes,
consent withdrawal, notifications, language — and that every page with personal data is audited."""

from __future__ import annotations

import datetime
import os
import re

import pytest
from django.test import Client

from accounts.choices import Role
from audit.models import AuditEvent
from referrals.choices import Status
from referrals.models import Case, Referral

PERSON = {
    "given_name": "Ana Demo",
    "family_name": "Ejemplo Prueba",
    "date_of_birth": "1991-03-04",
    "sex": "female",
    "nationality": "VEN",
    "languages": "es, en",
    "document_type": "passport",
    "document_number": "ZX-998877",
    "phone": "+507 6123-9876",
    "email": "ana.demo@example.org",
    "current_location": "Estación Lajas Blancas",
    "protection_needs": "Necesita acompañamiento especial",
    "summary": "Resumen confidencial del caso",
}
CONTACT_VALUES = ("+507 6123-9876", "ana.demo@example.org", "Estación Lajas Blancas")


@pytest.fixture
def iom_cw(iom, dp, make_user):
    return make_user(iom, Role.CASEWORKER, username="web.iom.cw", language="es")


@pytest.fixture
def dp_cw(dp, make_user):
    return make_user(dp, Role.CASEWORKER, username="web.dp.cw", language="es")


@pytest.fixture
def third_cw(third, make_user):
    return make_user(third, Role.CASEWORKER, username="web.third.cw", language="es")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def create_case(client, **overrides) -> Case:
    response = client.post("/cases/new/", {**PERSON, **overrides})
    assert response.status_code == 302, response.content.decode()[:3000]
    case_id = re.search(r"/cases/([0-9a-f-]{36})/", response["Location"]).group(1)
    return Case.objects.get(pk=case_id)


def refer(client, case, *, categories=("identity",), to="DP") -> Referral:
    obtained = (datetime.datetime.now() - datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/cases/{case.pk}/refer/",
        {
            "to_institution": to,
            "services": ["legal_assistance", "protection"],
            "urgency": "urgent",
            "reason": "Necesita asesoría legal urgente",
            "consent_given": "on",
            "consent_given_by": "self",
            "consent_method": "verbal",
            "consent_obtained_at": obtained,
            "data_categories": list(categories),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    referral_id = re.search(r"/referrals/([0-9a-f-]{36})/preview/", response["Location"]).group(1)
    return Referral.objects.get(pk=referral_id)


def act(client, referral, action, **data):
    return client.post(f"/referrals/{referral.pk}/actions/{action}/", data)


def html(response) -> str:
    return response.content.decode()


# --- access --------------------------------------------------------------------------------------


def test_anonymous_visitors_go_to_the_sign_in_page(db):
    for path in ("/", "/cases/new/", "/notifications/", "/audit/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_sign_in_with_password_lands_on_the_start_page(iom_cw):
    iom_cw.set_password("a-long-test-password-2026")
    iom_cw.save()
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "web.iom.cw", "password": "a-long-test-password-2026"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert AuditEvent.objects.filter(action="auth.login", actor_label="web.iom.cw").exists()


def test_logout_is_post_only(iom_cw):
    client = client_for(iom_cw)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/")["Location"].startswith("/accounts/login/")


# --- start page, case, search ----------------------------------------------------------------------


def test_start_page_speaks_spanish_by_default_and_lists_my_cases(iom_cw):
    client = client_for(iom_cw)
    case = create_case(client)
    page = html(client.get("/"))
    assert '<html lang="es">' in page
    assert 'id="awaiting"' in page and 'id="outbound"' in page and 'id="my-cases"' in page
    assert case.reference in page
    # "My cases" names the person for its owner (issue 12), and that list read is recorded (ids only).
    assert PERSON["given_name"] in page and "Venezuela" in page
    event = AuditEvent.objects.filter(action="case.list_viewed").latest("sequence")
    assert event.detail["case_ids"] == [str(case.pk)]
    assert PERSON["given_name"] not in str(event.detail)


def test_case_form_validates_and_shows_errors(iom_cw):
    client = client_for(iom_cw)
    response = client.post("/cases/new/", {**PERSON, "given_name": "", "date_of_birth": "2999-01-01"})
    assert response.status_code == 200
    assert 'class="form-errors"' in html(response)
    assert Case.objects.count() == 0


def test_duplicate_name_and_birth_date_asks_for_confirmation(iom_cw):
    client = client_for(iom_cw)
    first = create_case(client)
    response = client.post("/cases/new/", PERSON)
    assert response.status_code == 200
    page = html(response)
    assert 'id="duplicates"' in page and first.reference in page
    assert Case.objects.count() == 1
    second = create_case(client, confirm_not_duplicate="on")
    assert second.pk != first.pk and Case.objects.count() == 2


def test_case_page_shows_the_person_and_records_the_read(iom_cw):
    client = client_for(iom_cw)
    case = create_case(client)
    page = html(client.get(f"/cases/{case.pk}/"))
    assert PERSON["given_name"] in page and PERSON["phone"] in page and PERSON["summary"] in page
    assert 'id="refer-link"' in page and 'id="access-log"' in page
    event = AuditEvent.objects.filter(action="case.viewed", object_id=str(case.pk)).latest("sequence")
    assert event.actor_label == "web.iom.cw"


def test_document_search_is_a_post_and_finds_only_visible_cases(iom_cw, dp_cw):
    client = client_for(iom_cw)
    case = create_case(client)
    page = html(client.post("/cases/search/", {"document_number": "zx 998877"}))
    assert case.reference in page
    assert AuditEvent.objects.filter(action="case.searched", actor_label="web.iom.cw").exists()
    other = html(client_for(dp_cw).post("/cases/search/", {"document_number": "ZX-998877"}))
    assert case.reference not in other and 'id="results"' in other
    # A GET never carries a number.
    assert client.get("/cases/search/?document_number=ZX-998877").status_code == 200
    assert 'id="results"' not in html(client.get("/cases/search/?document_number=ZX-998877"))


# --- refer, preview, send --------------------------------------------------------------------------


def test_refer_shows_a_preview_of_exactly_what_the_receiver_sees(iom_cw):
    client = client_for(iom_cw)
    case = create_case(client)
    referral = refer(client, case, categories=("identity",))
    assert referral.status == Status.DRAFT
    page = html(client.get(f"/referrals/{referral.pk}/preview/"))
    shared = page.split('id="shared"')[1].split('id="withheld"')[0]
    assert PERSON["given_name"] in shared
    for value in CONTACT_VALUES + (PERSON["document_number"], PERSON["summary"]):
        assert value not in page
    assert 'data-field="phone"' in page.split('id="withheld"')[1]
    assert AuditEvent.objects.filter(action="referral.viewed", object_id=str(referral.pk)).exists()


def test_refer_form_a_given_consent_requires_a_category(iom_cw):
    """Without consent the form saves a draft (contract §7.1, tests/core/test_policy.py); a consent that
    is given names the data it lets travel."""
    client = client_for(iom_cw)
    case = create_case(client)
    obtained = (datetime.datetime.now() - datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/cases/{case.pk}/refer/",
        {
            "to_institution": "DP",
            "services": ["health"],
            "urgency": "normal",
            "reason": "x",
            "consent_given": "on",
            "consent_given_by": "self",
            "consent_method": "verbal",
            "consent_obtained_at": obtained,
        },
    )
    assert response.status_code == 200
    assert Referral.objects.count() == 0
    assert 'class="form-errors"' in html(response)


def test_full_flow_between_the_institutions(iom_cw, dp_cw):
    iom = client_for(iom_cw)
    dp = client_for(dp_cw)
    case = create_case(iom)
    referral = refer(iom, case, categories=("identity",))
    response = act(iom, referral, "send")
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.status == Status.REQUESTED

    # The receiver sees it awaiting an answer, with the time left, and only the consented data.
    start = html(dp.get("/"))
    awaiting = start.split('id="awaiting"')[1].split('id="assigned"')[0]
    assert referral.reference in awaiting and "time-left" in awaiting
    page = html(dp.get(f"/referrals/{referral.pk}/"))
    assert PERSON["given_name"] in page
    for value in CONTACT_VALUES + (PERSON["document_number"], PERSON["summary"], PERSON["protection_needs"]):
        assert value not in page
    for action in ("receive", "accept", "reject"):
        assert f'data-action="{action}"' in page
    assert 'data-action="cancel"' not in page and 'data-action="void"' not in page
    assert 'id="access-log"' not in page  # the sender's audit trail is the sender's

    # Accepting through the UI assigns the accepting caseworker.
    act(dp, referral, "accept")
    referral.refresh_from_db()
    assert referral.status == Status.ACCEPTED and referral.assignee == dp_cw
    assert referral.reference in html(dp.get("/")).split('id="assigned"')[1]
    act(dp, referral, "start")
    # Completing needs an outcome: without it nothing changes and the user is told.
    response = act(dp, referral, "complete")
    referral.refresh_from_db()
    assert referral.status == Status.IN_PROGRESS
    assert "message-error" in html(dp.get(f"/referrals/{referral.pk}/"))
    act(dp, referral, "complete", outcome="Asesoría brindada, caso cerrado")
    referral.refresh_from_db()
    assert referral.status == Status.COMPLETED

    # The sender sees the outcome and the receiver's access in "who accessed this case".
    sender_page = html(iom.get(f"/referrals/{referral.pk}/"))
    assert 'data-status="completed"' in sender_page
    assert "Asesoría brindada, caso cerrado" in sender_page
    log = sender_page.split('id="access-log"')[1]
    assert "web.dp.cw" in log


def test_sender_buttons_and_cancel_needs_a_reason(iom_cw, dp_cw):
    iom = client_for(iom_cw)
    case = create_case(iom)
    referral = refer(iom, case)
    act(iom, referral, "send")
    page = html(iom.get(f"/referrals/{referral.pk}/"))
    assert 'data-action="cancel"' in page
    assert 'data-action="accept"' not in page
    assert 'data-action="void"' not in page  # supervisors only
    act(iom, referral, "cancel")
    referral.refresh_from_db()
    assert referral.status == Status.REQUESTED
    act(iom, referral, "cancel", reason="La persona ya fue atendida")
    referral.refresh_from_db()
    assert referral.status == Status.CANCELLED
    # Cancelled: the receiver keeps the metadata, loses the person.
    dp_page = html(client_for(dp_cw).get(f"/referrals/{referral.pk}/"))
    assert referral.reference in dp_page and PERSON["given_name"] not in dp_page


def test_wrong_side_and_unknown_actions_change_nothing(iom_cw, dp_cw):
    iom = client_for(iom_cw)
    case = create_case(iom)
    referral = refer(iom, case)
    act(iom, referral, "send")
    act(iom, referral, "accept")  # the sender cannot accept
    referral.refresh_from_db()
    assert referral.status == Status.REQUESTED
    assert act(client_for(dp_cw), referral, "explode").status_code == 404
    assert client_for(dp_cw).get(f"/referrals/{referral.pk}/actions/accept/").status_code == 405


def test_third_institution_gets_404_everywhere(iom_cw, third_cw):
    iom = client_for(iom_cw)
    case = create_case(iom)
    referral = refer(iom, case)
    act(iom, referral, "send")
    other = client_for(third_cw)
    for path in (f"/cases/{case.pk}/", f"/referrals/{referral.pk}/", f"/referrals/{referral.pk}/preview/"):
        response = other.get(path)
        assert response.status_code == 404
        assert PERSON["given_name"] not in html(response)
    assert act(other, referral, "accept").status_code == 404


def test_draft_is_invisible_to_the_receiver(iom_cw, dp_cw):
    iom = client_for(iom_cw)
    referral = refer(iom, create_case(iom))
    assert client_for(dp_cw).get(f"/referrals/{referral.pk}/").status_code == 404


# --- notes, consent ---------------------------------------------------------------------------------


def test_notes_between_institutions_are_shared_and_audited(iom_cw, dp_cw):
    iom = client_for(iom_cw)
    referral = refer(iom, create_case(iom))
    act(iom, referral, "send")
    dp = client_for(dp_cw)
    response = dp.post(f"/referrals/{referral.pk}/notes/", {"body": "Cita asignada para el martes"})
    assert response.status_code == 302
    page = html(iom.get(f"/referrals/{referral.pk}/"))
    assert "Cita asignada para el martes" in page
    assert AuditEvent.objects.filter(action="note.viewed", actor_label="web.iom.cw").exists()
    assert AuditEvent.objects.filter(action="note.created", actor_label="web.dp.cw").exists()
    # An empty note is refused.
    dp.post(f"/referrals/{referral.pk}/notes/", {"body": "   "})
    assert referral.notes.count() == 1


def test_consent_withdrawal_cancels_and_revokes_the_receiver(iom_cw, dp_cw):
    iom = client_for(iom_cw)
    referral = refer(iom, create_case(iom))
    act(iom, referral, "send")
    dp = client_for(dp_cw)
    assert PERSON["given_name"] in html(dp.get(f"/referrals/{referral.pk}/"))
    iom.post(f"/referrals/{referral.pk}/consent/withdraw/", {"reason": "La persona lo pidió"})
    referral.refresh_from_db()
    assert referral.status == Status.CANCELLED
    page = html(dp.get(f"/referrals/{referral.pk}/"))
    assert PERSON["given_name"] not in page and "Cita" not in page


# --- notifications, language ------------------------------------------------------------------------


def test_notifications_page_and_badge(iom_cw, dp_cw):
    from notifications.models import Notification

    iom = client_for(iom_cw)
    referral = refer(iom, create_case(iom))
    act(iom, referral, "send")
    Notification.objects.create(user=dp_cw, event_type="referral.requested", referral=referral)
    dp = client_for(dp_cw)
    start = html(dp.get("/"))
    assert 'class="badge"' in start
    page = html(dp.get("/notifications/"))
    assert referral.reference in page
    notification = Notification.objects.filter(user=dp_cw).first()
    response = dp.post(f"/notifications/{notification.pk}/open/")
    assert response["Location"] == f"/referrals/{referral.pk}/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_language_choice_is_remembered_on_the_user(iom_cw):
    client = client_for(iom_cw)
    response = client.post("/preferences/language/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    iom_cw.refresh_from_db()
    assert iom_cw.language == "en"
    fresh = client_for(iom_cw)
    assert '<html lang="en">' in html(fresh.get("/"))
    client.post("/preferences/language/", {"language": "xx", "next": "/"})
    iom_cw.refresh_from_db()
    assert iom_cw.language == "en"


def test_preferences_save_email_switches(iom_cw):
    from notifications.selectors import preferences_for

    client = client_for(iom_cw)
    page = html(client.get("/preferences/"))
    assert 'id="preferences-form"' in page
    response = client.post("/preferences/", {"language": "es", "email_referral_requested": "on"})
    assert response.status_code == 302
    prefs = preferences_for(iom_cw)
    assert prefs["referral.requested"] is True and prefs["referral.status_changed"] is False


def test_open_redirects_are_refused(iom_cw):
    client = client_for(iom_cw)
    response = client.post("/preferences/language/", {"language": "es", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_wrong_key_gives_a_clear_503_page_without_ciphertext(iom_cw):
    from django.test import override_settings

    from referrals import crypto

    client = client_for(iom_cw)
    case = create_case(client)
    try:
        with override_settings(FIELD_ENCRYPTION_KEYS=[os.urandom(32)]):
            crypto.forget_cached_keys()
            response = client.get(f"/cases/{case.pk}/")
    finally:
        crypto.forget_cached_keys()
    assert response.status_code == 503
    page = html(response)
    assert "e1:" not in page and PERSON["given_name"] not in page
    assert response["Retry-After"] == "300"
    assert client.get(f"/cases/{case.pk}/").status_code == 200


# --- issue 22, item 6: what a newcomer met ----------------------------------------------------------


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_the_assignee_filter_reads_as_natural_spanish(iom_cw):
    """ "Asignada a: Mí" → each choice continues its label: "Asignada a: mí"."""
    page = html(client_for(iom_cw).get("/referrals/", HTTP_ACCEPT_LANGUAGE="es"))
    select = re.search(r'<select name="assignee".*?</select>', page, re.S).group(0)
    options = re.findall(r"<option[^>]*>([^<]*)</option>", select)
    assert options == ["cualquier persona", "mí", "nadie (cola del equipo)"]
    assert ">Mí<" not in page


def test_taking_a_referral_one_already_holds_says_so(iom_cw, dp_cw):
    sender = client_for(iom_cw)
    referral = refer(sender, create_case(sender))
    act(sender, referral, "send")
    receiver = client_for(dp_cw)
    receiver.post(f"/referrals/{referral.pk}/take/")
    again = receiver.post(f"/referrals/{referral.pk}/take/", follow=True)
    said = _messages(again)
    assert "Ya tiene asignada esta remisión." in said
    assert not [m for m in said if "otra persona" in m.lower() or "alguien" in m.lower()]
    referral.refresh_from_db()
    assert referral.assignee == dp_cw


def test_the_take_service_tells_its_own_holder_from_another(iom_cw, dp_cw, dp, make_user):
    from accounts.actor import actor_for_user
    from plumbing.problems import ProblemError
    from referrals import services

    sender = client_for(iom_cw)
    referral = refer(sender, create_case(sender))
    act(sender, referral, "send")
    services.referral_take(actor=actor_for_user(dp_cw), referral_id=referral.pk)
    with pytest.raises(ProblemError) as mine:
        services.referral_take(actor=actor_for_user(dp_cw), referral_id=referral.pk)
    assert (mine.value.slug, mine.value.status_code) == ("already-yours", 409)
    colleague = make_user(dp, Role.CASEWORKER, username="web.dp.cw2", language="es")
    with pytest.raises(ProblemError) as theirs:
        services.referral_take(actor=actor_for_user(colleague), referral_id=referral.pk)
    assert (theirs.value.slug, theirs.value.status_code) == ("already-assigned", 409)


def test_a_receiver_opening_the_print_address_is_told_it_is_the_senders_not_that_it_expired(iom_cw, dp_cw):
    sender = client_for(iom_cw)
    referral = refer(sender, create_case(sender))
    act(sender, referral, "send")
    page = client_for(dp_cw).get(f"/referrals/{referral.pk}/print/", follow=True)
    said = _messages(page)
    assert any("Solo la institución que envía imprime" in m for m in said), said
    assert not [m for m in said if "ya no se pueden imprimir" in m]
    assert not AuditEvent.objects.filter(action="referral.printed").exists()
