"""Offices in the web UI (issue 20, contract §7.2): the directory, the institution admins' office pages,
offices on the referral form, routing from the referral page, and the queues and supervision pages by
office. Real components throughout: the services, the grants, the audit log."""

from __future__ import annotations

import datetime
import re

import pytest

from accounts.actor import actor_for_user, system_actor
from accounts.choices import Role
from accounts.models import Office
from accounts.services import office_pause
from audit.models import AuditEvent
from referrals import services
from referrals.models import Referral
from tests.builders import consent, subject_data
from tests.offices.conftest import make_office

pytestmark = pytest.mark.django_db

CONSENT = {
    "consent_given": "on",
    "consent_given_by": "self",
    "consent_method": "verbal",
    "data_categories": ["identity"],
}


def html(response) -> str:
    return response.content.decode()


def obtained() -> str:
    return (datetime.datetime.now() - datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def offices(dp, iom):
    """DP: Darién (PA-5) and Chiriquí (PA-4) with legal assistance and protection, Bocas del Toro (PA-1)
    with shelter only, Colón (PA-3) paused with a reason; IOM: a Darién field office."""
    darien = make_office(dp, "DARIEN", "PA-5")
    chiriqui = make_office(dp, "CHIRIQUI", "PA-4")
    bocas = make_office(dp, "BOCAS", "PA-1", services=("shelter",), languages=("es", "gym"))
    colon = make_office(dp, "COLON", "PA-3")
    office_pause(
        office=colon,
        until=datetime.date.today() + datetime.timedelta(days=20),
        reason="Sin abogado este mes",
        actor=system_actor(dp, "test"),
    )
    iom_darien = make_office(iom, "DARIEN", "PA-5", services=("health", "protection"))
    return {"darien": darien, "chiriqui": chiriqui, "bocas": bocas, "colon": colon, "iom_darien": iom_darien}


@pytest.fixture
def staff(dp, iom, offices, make_user):
    return {
        "darien_cw": make_user(dp, Role.CASEWORKER, username="dp.darien.cw", office=offices["darien"]),
        "chiriqui_cw": make_user(dp, Role.CASEWORKER, username="dp.chiriqui.cw", office=offices["chiriqui"]),
        "darien_sup": make_user(dp, Role.SUPERVISOR, username="dp.darien.sup", office=offices["darien"]),
        "iom_darien_cw": make_user(
            iom, Role.CASEWORKER, username="iom.darien.cw", office=offices["iom_darien"]
        ),
    }


def refer_form(client, case, **values):
    data = {
        "to_institution": "DP",
        "services": ["legal_assistance"],
        "urgency": "normal",
        "reason": "Necesita asesoría legal",
        "consent_obtained_at": obtained(),
        **CONSENT,
        **values,
    }
    return client.post(f"/cases/{case.pk}/refer/", data)


def sent(make_referral, sender, dp, province=""):
    """A referral IOM → DP through the services, sent (routed at ``send`` by its province, if any)."""
    case = services.case_create(actor=sender, subject=subject_data(), summary="Resumen")
    referral = services.referral_create(
        actor=sender,
        case=case,
        to_institution=dp,
        services=["legal_assistance"],
        urgency="normal",
        reason="Motivo",
        consent=consent(("identity",)),
        province=province,
    )
    services.referral_transition(actor=sender, referral_id=referral.pk, action="send")
    referral.refresh_from_db()
    return referral


# --- the directory ---------------------------------------------------------------------------------


def test_directory_lists_every_institutions_offices_with_services_and_pauses(
    offices, iom_caseworker, web_client, assert_accessible
):
    client = web_client(iom_caseworker)
    response = client.get("/directory/")
    assert_accessible(response)
    page = html(response)
    for key in ("DP/DARIEN", "DP/CHIRIQUI", "DP/BOCAS", "DP/COLON", "IOM/DARIEN"):
        assert f'data-office="{key}"' in page
    assert "Asistencia legal" in page  # services by name, Spanish first
    assert "Sin abogado este mes" in page  # the pause reason shown to senders
    assert "Bocas del Toro" in page  # province names, not codes

    # Filters: province, service, language, accepting.
    darien_only = html(client.get("/directory/?province=PA-5"))
    assert 'data-office="DP/DARIEN"' in darien_only and 'data-office="IOM/DARIEN"' in darien_only
    assert 'data-office="DP/CHIRIQUI"' not in darien_only
    shelter = html(client.get("/directory/?service=shelter"))
    assert re.findall(r'data-office="([A-Z/]+)"', shelter) == ["DP/BOCAS"]
    ngabere = html(client.get("/directory/?language=gym"))
    assert re.findall(r'data-office="([A-Z/]+)"', ngabere) == ["DP/BOCAS"]
    paused = html(client.get("/directory/?accepting=false"))
    assert re.findall(r'data-office="([A-Z/]+)"', paused) == ["DP/COLON"]
    accepting = html(client.get("/directory/?accepting=true"))
    assert 'data-office="DP/COLON"' not in accepting and 'data-office="DP/DARIEN"' in accepting


def test_directory_refuses_an_invalid_filter_and_lists_nothing(offices, iom_caseworker, web_client):
    response = web_client(iom_caseworker).get("/directory/?province=PA-99")
    assert response.status_code == 400
    assert "data-office=" not in html(response)


def test_directory_in_english(offices, iom_caseworker, web_client):
    iom_caseworker.language = "en"
    iom_caseworker.save()
    client = web_client(iom_caseworker)
    client.post("/preferences/language/", {"language": "en", "next": "/directory/"})
    page = html(client.get("/directory/?service=shelter"))
    assert "Shelter" in page


# --- the institution admins' office pages ----------------------------------------------------------


def test_admin_creates_edits_pauses_and_resumes_an_office(dp, dp_admin, web_client, assert_accessible):
    client = web_client(dp_admin)
    assert_accessible(client.get("/manage/offices/"))
    assert_accessible(client.get("/manage/offices/new/"))
    response = client.post(
        "/manage/offices/new/",
        {"code": "DARIEN", "name": "Defensoría Darién", "province": "PA-5", "services": ["legal_assistance"]},
    )
    assert response.status_code == 302, html(response)[:2000]
    office = Office.objects.get(institution=dp, code="DARIEN")
    assert office.province == "PA-5" and office.services == ["legal_assistance"]
    assert AuditEvent.objects.filter(action="office.created", object_id=str(office.pk)).exists()

    # The same code again: refused beside the field.
    again = client.post(
        "/manage/offices/new/",
        {"code": "DARIEN", "name": "Otra", "province": "PA-5", "services": ["legal_assistance"]},
    )
    assert again.status_code == 200 and "ya tiene una oficina con este código" in html(again)

    assert_accessible(client.get("/manage/offices/DARIEN/"))
    response = client.post(
        "/manage/offices/DARIEN/",
        {
            "code": "IGNORED",
            "name": "Defensoría Darién (Metetí)",
            "province": "PA-5",
            "services": ["legal_assistance", "protection"],
            "languages": ["es", "emp"],
        },
    )
    assert response.status_code == 302
    office.refresh_from_db()
    assert office.code == "DARIEN"  # a code never changes
    assert office.name == "Defensoría Darién (Metetí)" and office.languages == ["es", "emp"]
    assert AuditEvent.objects.filter(action="office.changed", object_id=str(office.pk)).exists()

    until = datetime.date.today() + datetime.timedelta(days=10)
    client.post(
        "/manage/offices/DARIEN/pause/", {"paused_until": until.isoformat(), "pause_reason": "Sin abogado"}
    )
    office.refresh_from_db()
    assert not office.is_accepting() and office.paused_until == until and office.pause_reason == "Sin abogado"
    assert AuditEvent.objects.filter(action="office.paused", object_id=str(office.pk)).exists()
    assert "Sin abogado" in html(client.get("/manage/offices/"))

    client.post("/manage/offices/DARIEN/resume/")
    office.refresh_from_db()
    assert office.is_accepting() and office.paused_until is None and office.pause_reason == ""
    assert AuditEvent.objects.filter(action="office.resumed", object_id=str(office.pk)).exists()


def test_office_form_shows_the_services_rules_beside_the_fields(dp_admin, web_client):
    response = web_client(dp_admin).post(
        "/manage/offices/new/", {"code": "bad code", "name": "", "province": "PA-5", "services": []}
    )
    assert response.status_code == 200
    assert not Office.objects.exists()
    page = html(response)
    assert 'id="id_code_error"' in page and 'id="id_services_error"' in page


def test_a_past_pause_date_is_refused_with_a_message(offices, dp_admin, web_client):
    client = web_client(dp_admin)
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    response = client.post(
        "/manage/offices/DARIEN/pause/", {"paused_until": yesterday.isoformat()}, follow=True
    )
    assert "message-error" in html(response)
    offices["darien"].refresh_from_db()
    assert offices["darien"].is_accepting()


def test_only_admins_manage_offices_and_only_their_own(offices, iom_admin, dp_supervisor, web_client):
    assert web_client(dp_supervisor).get("/manage/offices/").status_code == 403
    assert web_client(dp_supervisor).post("/manage/offices/DARIEN/pause/").status_code == 403
    iom = web_client(iom_admin)
    # IOM's admin edits IOM's Darién office; DP's offices are not theirs (another institution's code: 404).
    assert iom.get("/manage/offices/DARIEN/").status_code == 200
    assert iom.get("/manage/offices/CHIRIQUI/").status_code == 404
    assert iom.post("/manage/offices/COLON/resume/").status_code == 404
    offices["colon"].refresh_from_db()
    assert not offices["colon"].is_accepting()
    assert 'data-office="CHIRIQUI"' not in html(iom.get("/manage/offices/"))


def test_admin_places_staff_in_an_office(dp, offices, dp_admin, web_client):
    client = web_client(dp_admin)
    response = client.post(
        "/manage/users/new/",
        {
            "username": "dp.nueva",
            "role": "caseworker",
            "language": "es",
            "office": "DARIEN",
            "password1": "Una-clave-larga-2026",
            "password2": "Una-clave-larga-2026",
        },
    )
    assert response.status_code == 302, html(response)[:2000]
    user = dp.users.get(username="dp.nueva")
    assert user.office_id == offices["darien"].pk
    assert offices["darien"].group() in user.groups.all()
    assert '<td data-label="Oficina" class="user-office">DP Darien</td>' in html(client.get("/manage/users/"))

    client.post(
        f"/manage/users/{user.pk}/", {"email": "", "role": "caseworker", "language": "es", "office": ""}
    )
    user.refresh_from_db()
    assert user.office_id is None  # national again
    event = AuditEvent.objects.filter(action="user.changed", object_id=str(user.pk)).latest("sequence")
    assert "office" in event.detail["fields"]


def test_staff_pages_without_offices_have_no_office_field_nor_column(dp_admin, web_client):
    client = web_client(dp_admin)
    assert 'name="office"' not in html(client.get("/manage/users/new/"))
    assert 'class="user-office"' not in html(client.get("/manage/users/"))


# --- the referral form ------------------------------------------------------------------------------


def test_referral_form_offers_the_offices_nearest_province_first(
    offices, staff, make_case, web_client, assert_accessible
):
    sender = staff["iom_darien_cw"]
    case = make_case(actor_for_user(sender))
    client = web_client(sender)
    response = client.get(f"/cases/{case.pk}/refer/")
    assert_accessible(response)
    page = html(response)
    # The sender's office is in the Darién: its province is chosen and DP's Darién office comes first.
    assert re.search(r'<option value="PA-5" selected>', page)
    order = re.findall(r'data-office="(DP/[A-Z]+)"', page)
    assert order[0] == "DP/DARIEN"
    assert order[1:] == ["DP/BOCAS", "DP/CHIRIQUI", "DP/COLON"]  # then by province name
    colon = re.search(r'<li data-office="DP/COLON"[^>]*>.*?</li>', page.replace("\n", " "))
    assert colon is None or "disabled" in colon.group(0)
    colon_radio = re.search(r'<input type="radio" name="to_office" value="COLON"[^>]*>', page).group(0)
    assert "disabled" in colon_radio
    assert "Sin abogado este mes" in page


def test_show_offices_lists_those_offering_the_services_without_creating_anything(
    offices, iom_caseworker, make_case, web_client
):
    case = make_case(actor_for_user(iom_caseworker))
    client = web_client(iom_caseworker)
    response = client.post(
        f"/cases/{case.pk}/refer/",
        {"to_institution": "DP", "services": ["shelter"], "province": "PA-4", "show_offices": "Mostrar"},
    )
    assert response.status_code == 200
    assert not Referral.objects.exists()
    page = html(response)
    shown = re.findall(r'<li data-institution="DP"[^>]*data-office="(DP/[A-Z]+)"(?![^>]*hidden)', page)
    assert shown == ["DP/BOCAS"]  # the only DP office offering shelter
    assert "form-errors" not in page  # not checked yet: nothing is wrong before sending the form


def test_referral_to_a_chosen_office_with_a_province(offices, iom_caseworker, make_case, web_client):
    case = make_case(actor_for_user(iom_caseworker))
    response = refer_form(web_client(iom_caseworker), case, to_office="CHIRIQUI", province="PA-5")
    assert response.status_code == 302, html(response)[:3000]
    referral = Referral.objects.get()
    assert referral.to_office_id == offices["chiriqui"].pk and referral.province == "PA-5"


def test_referral_form_refuses_a_paused_office_and_one_without_the_services(
    offices, iom_caseworker, make_case, web_client
):
    case = make_case(actor_for_user(iom_caseworker))
    client = web_client(iom_caseworker)
    paused = refer_form(client, case, to_office="COLON")
    assert paused.status_code == 200 and "Esta oficina está en pausa" in html(paused)
    wrong = refer_form(client, case, to_office="BOCAS")  # shelter only
    assert wrong.status_code == 200 and 'id="id_to_office_error"' in html(wrong)
    unknown = refer_form(client, case, to_office="NOWHERE")
    assert unknown.status_code == 200
    bad_province = refer_form(client, case, province="PA-99")
    assert bad_province.status_code == 200
    assert not Referral.objects.exists()


def test_without_a_chosen_office_the_province_routes_it_at_sending(
    offices, iom_caseworker, make_case, web_client
):
    case = make_case(actor_for_user(iom_caseworker))
    client = web_client(iom_caseworker)
    assert refer_form(client, case, province="PA-5").status_code == 302
    referral = Referral.objects.get()
    assert referral.to_office_id is None
    assert "Lo decide la provincia al enviarla" in html(client.get(f"/referrals/{referral.pk}/preview/"))
    client.post(f"/referrals/{referral.pk}/actions/send/")
    referral.refresh_from_db()
    assert referral.to_office_id == offices["darien"].pk
    assert "Defensoría" in html(client.get(f"/referrals/{referral.pk}/"))


def test_a_form_without_offices_is_as_before(dp, iom_caseworker, make_case, web_client):
    case = make_case(actor_for_user(iom_caseworker))
    client = web_client(iom_caseworker)
    page = html(client.get(f"/cases/{case.pk}/refer/"))
    assert "data-office=" not in page and 'id="office-field"' not in page
    assert refer_form(client, case).status_code == 302
    referral = Referral.objects.get()
    assert referral.to_office_id is None and referral.province == ""


# --- routing from the referral page -------------------------------------------------------------------


def test_supervisor_routes_to_another_office_and_the_grants_follow(
    offices, staff, iom_actor, dp, dp_supervisor, make_referral, web_client
):
    referral = sent(make_referral, iom_actor, dp)  # no province: national intake
    assert referral.to_office_id is None
    sup = web_client(dp_supervisor)
    page = html(sup.get(f"/referrals/{referral.pk}/"))
    assert 'id="route-form"' in page and "recepción nacional" in page
    darien = web_client(staff["darien_cw"])
    assert darien.get(f"/referrals/{referral.pk}/").status_code == 404

    response = sup.post(f"/referrals/{referral.pk}/route/", {"to_office": "DARIEN"}, follow=True)
    assert "message-success" in html(response)
    referral.refresh_from_db()
    assert referral.to_office_id == offices["darien"].pk
    assert darien.get(f"/referrals/{referral.pk}/").status_code == 200
    assert AuditEvent.objects.filter(action="referral.routed", object_id=str(referral.pk)).count() == 1

    # Back to the national intake.
    sup.post(f"/referrals/{referral.pk}/route/", {"to_office": "none"})
    referral.refresh_from_db()
    assert referral.to_office_id is None
    assert darien.get(f"/referrals/{referral.pk}/").status_code == 404


def test_routing_errors_are_shown_clearly_and_change_nothing(
    offices, staff, iom_actor, dp, dp_supervisor, make_referral, web_client
):
    referral = sent(make_referral, iom_actor, dp)
    sup = web_client(dp_supervisor)
    paused = sup.post(f"/referrals/{referral.pk}/route/", {"to_office": "COLON"}, follow=True)
    assert "Esta oficina está en pausa" in html(paused)
    unknown = sup.post(f"/referrals/{referral.pk}/route/", {"to_office": "NOWHERE"}, follow=True)
    assert "Elija una oficina de la institución receptora" in html(unknown)
    empty = sup.post(f"/referrals/{referral.pk}/route/", {"to_office": ""}, follow=True)
    assert "message-error" in html(empty)
    referral.refresh_from_db()
    assert referral.to_office_id is None
    assert not AuditEvent.objects.filter(action="referral.routed").exists()


def test_an_office_caseworker_routes_it_away_and_lands_on_the_start_page(
    offices, staff, iom, dp, make_referral, web_client
):
    sender = actor_for_user(staff["iom_darien_cw"])
    referral = sent(make_referral, sender, dp, province="PA-5")
    assert referral.to_office_id == offices["darien"].pk
    darien = web_client(staff["darien_cw"])
    response = darien.post(f"/referrals/{referral.pk}/route/", {"to_office": "CHIRIQUI"})
    assert response.status_code == 302 and response["Location"] == "/"
    referral.refresh_from_db()
    assert referral.to_office_id == offices["chiriqui"].pk
    # Another office's caseworker cannot route it (404: no need to know), nor can the sender (no form).
    assert darien.post(f"/referrals/{referral.pk}/route/", {"to_office": "DARIEN"}).status_code == 404
    iom_page = html(web_client(staff["iom_darien_cw"]).get(f"/referrals/{referral.pk}/"))
    assert 'id="route-form"' not in iom_page
    refused = web_client(staff["iom_darien_cw"]).post(
        f"/referrals/{referral.pk}/route/", {"to_office": "DARIEN"}, follow=True
    )
    assert "message-error" in html(refused)
    referral.refresh_from_db()
    assert referral.to_office_id == offices["chiriqui"].pk


def test_no_route_form_without_offices(iom_actor, dp, dp_supervisor, make_referral, web_client):
    referral = sent(make_referral, iom_actor, dp)
    assert 'id="route-form"' not in html(web_client(dp_supervisor).get(f"/referrals/{referral.pk}/"))


# --- queues and supervision by office ------------------------------------------------------------------


@pytest.fixture
def two_referrals(offices, staff, iom_actor, dp, make_referral):
    """One at the Darién office, one at the national intake."""
    at_darien = sent(make_referral, iom_actor, dp, province="PA-5")
    national = sent(make_referral, iom_actor, dp)
    assert at_darien.to_office_id == offices["darien"].pk and national.to_office_id is None
    return at_darien, national


def test_start_page_queue_is_the_offices(two_referrals, staff, dp_caseworker, web_client):
    at_darien, national = two_referrals
    page = html(web_client(staff["darien_cw"]).get("/"))
    assert "Cola de la oficina DP Darien" in page
    assert f'data-referral="{at_darien.pk}"' in page and f'data-referral="{national.pk}"' not in page
    assert "data-referral" not in html(web_client(staff["chiriqui_cw"]).get("/"))
    # National staff: the national intake and every office.
    national_page = html(web_client(dp_caseworker).get("/"))
    assert (
        f'data-referral="{at_darien.pk}"' in national_page
        and f'data-referral="{national.pk}"' in national_page
    )


def test_referral_list_office_filter(two_referrals, dp_supervisor, web_client, assert_accessible):
    at_darien, national = two_referrals
    client = web_client(dp_supervisor)
    assert_accessible(client.get("/referrals/?office=DARIEN"))
    darien = html(client.get("/referrals/?office=DARIEN"))
    assert f'data-referral="{at_darien.pk}"' in darien and f'data-referral="{national.pk}"' not in darien
    intake = html(client.get("/referrals/?office=none"))
    assert f'data-referral="{national.pk}"' in intake and f'data-referral="{at_darien.pk}"' not in intake
    unknown = client.get("/referrals/?office=NOWHERE")
    assert unknown.status_code == 400 and "data-referral=" not in html(unknown)


def test_workload_and_response_times_by_office(
    two_referrals, staff, dp_supervisor, dp_caseworker, web_client, assert_accessible
):
    at_darien, national = two_referrals
    office_sup = web_client(staff["darien_sup"])
    page = html(office_sup.get("/supervision/workload/"))
    assert 'data-user="dp.darien.cw"' in page
    assert 'data-user="dp.chiriqui.cw"' not in page and 'data-user="dp.cw"' not in page
    assert f'data-referral="{at_darien.pk}"' in page and f'data-referral="{national.pk}"' not in page
    assert 'id="office-scope"' in page

    national_sup = web_client(dp_supervisor)
    assert_accessible(national_sup.get("/supervision/workload/"))
    everyone = html(national_sup.get("/supervision/workload/"))
    assert 'data-user="dp.darien.cw"' in everyone and 'data-user="dp.chiriqui.cw"' in everyone
    chiriqui = html(national_sup.get("/supervision/workload/?office=CHIRIQUI"))
    assert 'data-user="dp.chiriqui.cw"' in chiriqui and 'data-user="dp.darien.cw"' not in chiriqui
    assert "data-referral=" not in chiriqui
    intake = html(national_sup.get("/supervision/workload/?office=none"))
    assert f'data-referral="{national.pk}"' in intake and f'data-referral="{at_darien.pk}"' not in intake
    assert national_sup.get("/supervision/workload/?office=NOWHERE").status_code == 400

    assert_accessible(national_sup.get("/supervision/response-times/?office=DARIEN"))
    total = re.compile(r'id="stat-total"><span class="stat-value">(\d+)<')
    assert total.search(html(national_sup.get("/supervision/response-times/"))).group(1) == "2"
    assert total.search(html(national_sup.get("/supervision/response-times/?office=DARIEN"))).group(1) == "1"
    assert (
        total.search(html(national_sup.get("/supervision/response-times/?office=CHIRIQUI"))).group(1) == "0"
    )
    assert total.search(html(office_sup.get("/supervision/response-times/"))).group(1) == "1"
    # An office's supervisor cannot look at another office (nor the national intake).
    assert office_sup.get("/supervision/response-times/?office=CHIRIQUI").status_code == 400
    assert office_sup.get("/supervision/workload/?office=none").status_code == 400


def test_sending_to_an_office_paused_meanwhile_shows_why_on_the_preview(
    offices, dp_admin, iom_caseworker, make_case, web_client
):
    case = make_case(actor_for_user(iom_caseworker))
    client = web_client(iom_caseworker)
    assert refer_form(client, case, to_office="DARIEN").status_code == 302
    referral = Referral.objects.get()
    web_client(dp_admin).post("/manage/offices/DARIEN/pause/", {"pause_reason": "Cerrada"})
    response = client.post(f"/referrals/{referral.pk}/actions/send/", follow=True)
    assert re.search(rf"/referrals/{referral.pk}/preview/$", response.redirect_chain[-1][0])
    assert "Esta oficina está en pausa" in html(response)
    referral.refresh_from_db()
    assert referral.status == "draft"


@pytest.mark.parametrize("url", ["/", "/referrals/?office=DARIEN", "/supervision/workload/?office=DARIEN"])
def test_office_lists_cost_the_same_queries_for_2_or_12_rows(
    url, offices, staff, iom_actor, dp, dp_supervisor, make_referral, web_client
):
    """Rows show their office from the list's one query (``worklists.ROW_RELATED``): no query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = web_client(dp_supervisor)
    counts = []
    for total in (2, 12):
        while Referral.objects.count() < total:
            sent(make_referral, iom_actor, dp, province="PA-5")
        client.get(url)  # warm the per-process caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert html(response).count(f'<br><span class="muted row-office">→ {offices["darien"].name}') >= min(
            total, 10
        )
        counts.append(len(queries))
    print(f"\n{url}: {counts[0]} queries for 2 rows, {counts[1]} for 12")
    assert counts[0] == counts[1], counts
