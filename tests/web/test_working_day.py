"""Issue 12, a caseworker's working day, through Django's test client on the real database: the referral
list and its filters (contract §6.5), the team queue, take / assign / reassign and their permissions, the
audit of lists that name people, names instead of codes, the printable sheet, the API docs page, the
notification texts, the favicon and the small fixes."""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.actor import actor_for_user
from accounts.choices import Role
from audit.models import AuditEvent
from notifications.models import Notification
from referrals import services
from referrals.models import Referral
from referrals.selectors import has_referral_perm
from tests.web.conftest import PASSWORD, page_problems

SEND = "send"


def html(response) -> str:
    return response.content.decode()


def rows_of(response) -> list[str]:
    """The references listed in the page's referral rows, in order."""
    return re.findall(r'data-reference="([^"]+)"', html(response))


@pytest.fixture
def dp_cw2(dp, make_user):
    return make_user(dp, Role.CASEWORKER, username="dp.cw2", language="es")


@pytest.fixture
def third_cw(third, make_user):
    return make_user(third, Role.CASEWORKER, username="third.cw")


@pytest.fixture
def sent(iom_actor, dp, make_referral):
    """``sent(categories=..., urgency=...)`` → a referral IOM → DP, sent (awaiting DP's answer)."""

    def make(categories=("identity",), urgency="normal", path=()):
        return make_referral(
            iom_actor, dp, categories=categories, urgency=urgency, path=[(iom_actor, SEND), *path]
        )

    return make


# --- /referrals/: filters, order, pagination ----------------------------------------------------------


def test_referral_list_filters_by_direction_status_reference_urgency_and_overdue(
    sent, iom_caseworker, dp_caseworker, dp_actor, web_client, assert_accessible
):
    normal = sent()
    urgent = sent(urgency="urgent")
    accepted = sent(path=[(dp_actor, "accept")])
    late = sent(urgency="emergency")
    Referral.objects.filter(pk=late.pk).update(response_due_at=timezone.now() - datetime.timedelta(hours=2))
    dp = web_client(dp_caseworker)

    response = dp.get("/referrals/")
    assert_accessible(response)
    # The overdue first, then the most urgent, then the nearest deadline.
    assert rows_of(response)[:2] == [late.reference, urgent.reference]
    assert set(rows_of(response)) == {normal.reference, urgent.reference, accepted.reference, late.reference}

    assert rows_of(dp.get("/referrals/?direction=outbound")) == []
    assert set(rows_of(dp.get("/referrals/?direction=inbound&status=accepted"))) == {accepted.reference}
    assert set(rows_of(dp.get("/referrals/?status=accepted,requested"))) == {
        normal.reference,
        urgent.reference,
        accepted.reference,
        late.reference,
    }
    assert rows_of(dp.get(f"/referrals/?q={normal.reference.lower()}")) == [normal.reference]
    assert rows_of(dp.get("/referrals/?q=DP-R-1999-000001")) == []
    assert rows_of(dp.get("/referrals/?urgency=urgent")) == [urgent.reference]
    assert rows_of(dp.get("/referrals/?overdue=on")) == [late.reference]

    # The sender sees them as outbound.
    iom = web_client(iom_caseworker)
    assert len(rows_of(iom.get("/referrals/?direction=outbound"))) == 4
    assert rows_of(iom.get("/referrals/?direction=inbound")) == []


def test_referral_list_refuses_bad_filters_without_a_5xx(dp_caseworker, web_client):
    client = web_client(dp_caseworker)
    for query in ("status=nonsense", "direction=sideways", "assignee=everyone", "urgency=x", "page=abc"):
        response = client.get(f"/referrals/?{query}")
        assert response.status_code in (200, 400), query
    assert client.get("/referrals/?status=nonsense").status_code == 400


def test_referral_list_is_paginated_and_its_cost_does_not_grow_with_the_page(
    sent, iom_caseworker, web_client, django_assert_max_num_queries
):
    for _ in range(27):
        sent()
    client = web_client(iom_caseworker)
    first = client.get("/referrals/")
    assert len(rows_of(first)) == 25
    assert 'rel="next"' in html(first)
    second = client.get("/referrals/?page=2")
    assert len(rows_of(second)) == 2
    with django_assert_max_num_queries(30):
        client.get("/referrals/")


def test_a_referral_accepted_through_the_api_is_in_the_receivers_team_queue(
    iom, dp, sent, api_as, dp_caseworker, web_client
):
    referral = sent()
    response = api_as(dp).post(f"/api/v1/referrals/{referral.pk}/accept/", {}, format="json")
    assert response.status_code == 200, response.content
    referral.refresh_from_db()
    assert referral.status == "accepted" and referral.assignee_id is None
    client = web_client(dp_caseworker)
    assert rows_of(client.get("/referrals/?direction=inbound&assignee=none")) == [referral.reference]
    home = client.get("/")
    assert referral.reference in html(home).split('id="team-queue"')[1].split("</section>")[0]


# --- people by name, audited; consent decides what receivers see ------------------------------------


def test_lists_name_the_person_for_the_sender_and_record_one_read_with_the_ids(
    sent, iom_caseworker, web_client
):
    referrals = [sent(), sent()]
    client = web_client(iom_caseworker)
    before = AuditEvent.objects.filter(action="referral.list_viewed").count()
    page = html(client.get("/referrals/?direction=outbound"))
    assert "María José Pérez Rondón" in page
    assert "Venezuela" in page and "VEN<" not in page
    events = AuditEvent.objects.filter(action="referral.list_viewed").order_by("sequence")
    assert events.count() == before + 1
    event = events.last()
    assert sorted(event.detail["referral_ids"]) == sorted(str(r.pk) for r in referrals)
    assert "María" not in str(event.detail) and event.actor_label == iom_caseworker.username


def test_receivers_list_shows_only_what_consent_allows(sent, dp_caseworker, web_client):
    with_identity = sent(categories=("identity",))
    contact_only = sent(categories=("contact",))
    client = web_client(dp_caseworker)
    page = html(client.get("/referrals/"))
    row = {ref: chunk for ref, chunk in re.findall(r'data-reference="([^"]+)"(.*?)</tr>', page, re.S)}
    assert "María José" in row[with_identity.reference]
    assert "María José" not in row[contact_only.reference]
    event = AuditEvent.objects.filter(action="referral.list_viewed").latest("sequence")
    assert event.detail["referral_ids"] == [str(with_identity.pk)]


def test_a_list_without_anyone_shown_records_nothing(dp_caseworker, web_client):
    client = web_client(dp_caseworker)
    assert client.get("/referrals/").status_code == 200
    assert not AuditEvent.objects.filter(action="referral.list_viewed").exists()


def test_my_cases_page_is_paginated_and_audited(iom_actor, iom_caseworker, make_case, web_client):
    for _ in range(26):
        make_case(iom_actor)
    client = web_client(iom_caseworker)
    response = client.get("/cases/")
    assert response.status_code == 200
    assert html(response).count('data-case="') == 25
    event = AuditEvent.objects.filter(action="case.list_viewed").latest("sequence")
    assert len(event.detail["case_ids"]) == 25
    assert html(client.get("/cases/?page=2")).count('data-case="') == 1


# --- take, assign, reassign --------------------------------------------------------------------------


def test_a_caseworker_takes_an_unassigned_referral_and_the_workload_shows_it(
    sent, dp_caseworker, dp_supervisor, web_client
):
    referral = sent()
    client = web_client(dp_caseworker)
    response = client.post(f"/referrals/{referral.pk}/take/", {"next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    referral.refresh_from_db()
    assert referral.assignee == dp_caseworker
    event = AuditEvent.objects.filter(action="referral.assigned").latest("sequence")
    assert event.detail["how"] == "take" and event.detail["assignee"] == str(dp_caseworker.pk)
    assert rows_of(client.get("/referrals/?assignee=me")) == [referral.reference]
    assert rows_of(client.get("/referrals/?direction=inbound&assignee=none")) == []
    workload = html(web_client(dp_supervisor).get("/supervision/workload/"))
    row = workload.split(f'data-user="{dp_caseworker.username}"')[1].split("</tr>")[0]
    assert re.search(r'data-col="inbound_assigned_open">1<', row)
    # Taken already: a second caseworker is told so, nothing changes.
    other = web_client(dp_caseworker)
    other.post(f"/referrals/{referral.pk}/take/")
    referral.refresh_from_db()
    assert referral.assignee == dp_caseworker


def test_take_is_refused_to_another_institution_the_sender_and_a_supervisor(
    sent, third_cw, iom_caseworker, dp_supervisor, web_client
):
    referral = sent()
    assert web_client(third_cw).post(f"/referrals/{referral.pk}/take/").status_code == 404
    web_client(iom_caseworker).post(f"/referrals/{referral.pk}/take/")
    referral.refresh_from_db()
    assert referral.assignee_id is None
    assert web_client(dp_supervisor).post(f"/referrals/{referral.pk}/take/").status_code == 302
    referral.refresh_from_db()
    assert referral.assignee_id is None


def test_a_supervisor_assigns_and_reassigns_and_the_assignee_is_notified(
    sent, dp_caseworker, dp_cw2, dp_supervisor, web_client
):
    referral = sent()
    sup = web_client(dp_supervisor)
    workload = sup.get("/supervision/workload/")
    assert referral.reference in html(workload)
    sup.post(f"/referrals/{referral.pk}/assign/", {"assignee": str(dp_caseworker.pk)})
    referral.refresh_from_db()
    assert referral.assignee == dp_caseworker
    sup.post(f"/referrals/{referral.pk}/assign/", {"assignee": str(dp_cw2.pk)})
    referral.refresh_from_db()
    assert referral.assignee == dp_cw2
    note = Notification.objects.get(user=dp_cw2, event_type="referral.assigned")
    assert note.referral_id == referral.pk and "María" not in str(note.data)
    assert Notification.objects.filter(user=dp_caseworker, event_type="referral.assigned").count() == 1
    # The new assignee holds the referral's per-object permissions, like a caseworker who accepts.
    actor = actor_for_user(dp_cw2)
    assert has_referral_perm(actor, referral, "view_referral_personal")
    page = html(web_client(dp_cw2).get("/notifications/"))
    assert referral.reference in page
    # The previous assignee's own grants go (audited); the team keeps its access through its groups.
    from referrals.models import ReferralUserObjectPermission

    assert not ReferralUserObjectPermission.objects.filter(
        content_object=referral, user=dp_caseworker
    ).exists()
    assert AuditEvent.objects.filter(
        action="permission.revoked", object_id=str(referral.pk), detail__grantee=f"user:{dp_caseworker.pk}"
    ).exists()


def test_a_caseworker_cannot_assign_and_nobody_assigns_outside_the_institution(
    sent, iom, dp_caseworker, dp_cw2, dp_supervisor, make_user, web_client
):
    referral = sent()
    response = web_client(dp_caseworker).post(
        f"/referrals/{referral.pk}/assign/", {"assignee": str(dp_cw2.pk)}
    )
    assert response.status_code == 403
    outsider = make_user(iom, Role.CASEWORKER, username="iom.other")
    web_client(dp_supervisor).post(f"/referrals/{referral.pk}/assign/", {"assignee": str(outsider.pk)})
    web_client(dp_supervisor).post(f"/referrals/{referral.pk}/assign/", {"assignee": "not-a-uuid"})
    referral.refresh_from_db()
    assert referral.assignee_id is None


def test_assignment_services_check_permissions(sent, dp_caseworker, dp_cw2, dp_supervisor, third_cw):
    from plumbing.problems import ProblemError

    referral = sent()
    with pytest.raises(ProblemError) as exc:
        services.referral_assign(
            actor=actor_for_user(dp_caseworker), referral_id=referral.pk, assignee=dp_cw2
        )
    assert exc.value.status_code == 403
    with pytest.raises(ProblemError) as exc:
        services.referral_take(actor=actor_for_user(third_cw), referral_id=referral.pk)
    assert exc.value.status_code == 404
    with pytest.raises(ProblemError) as exc:
        services.referral_assign(
            actor=actor_for_user(dp_supervisor), referral_id=referral.pk, assignee=third_cw
        )
    assert exc.value.status_code == 400
    services.referral_take(actor=actor_for_user(dp_caseworker), referral_id=referral.pk)
    with pytest.raises(ProblemError) as exc:
        services.referral_take(actor=actor_for_user(dp_cw2), referral_id=referral.pk)
    assert exc.value.status_code == 409


# --- the referral page: marks, names, print ------------------------------------------------------------


def test_the_senders_page_marks_what_travels_and_what_stays(sent, iom_caseworker, web_client):
    referral = sent(categories=("identity", "contact"))
    page = html(web_client(iom_caseworker).get(f"/referrals/{referral.pk}/"))
    assert 'data-field="given_name" data-travels="yes"' in page
    assert 'data-field="phone" data-travels="yes"' in page
    assert 'data-field="document_number" data-travels="no"' in page
    assert 'data-field="protection_needs" data-travels="no"' in page
    assert "Venezuela" in page and "español" in page


def test_the_printable_sheet_carries_exactly_the_consented_data(sent, iom_caseworker, web_client):
    referral = sent(categories=("identity",))
    client = web_client(iom_caseworker)
    response = client.get(f"/referrals/{referral.pk}/print/")
    assert response.status_code == 200
    page = html(response)
    assert referral.reference in page and "María José" in page and iom_caseworker.username in page
    for withheld in ("6000-1234", "maria@example.org", "Lajas Blancas", "V12345678", "Sobreviviente"):
        assert withheld not in page
    assert not page_problems(page)
    event = AuditEvent.objects.filter(action="referral.printed").latest("sequence")
    assert event.object_id == str(referral.pk) and event.detail["categories"] == ["identity"]


def test_the_sheet_is_refused_once_consent_is_withdrawn_to_the_receiver_and_to_others(
    sent, iom_caseworker, dp_caseworker, third_cw, web_client
):
    referral = sent()
    receiver = web_client(dp_caseworker)
    assert 'id="print-link"' not in html(receiver.get(f"/referrals/{referral.pk}/"))
    assert receiver.get(f"/referrals/{referral.pk}/print/").status_code == 302  # back to the referral
    client = web_client(iom_caseworker)
    client.post(f"/referrals/{referral.pk}/consent/withdraw/", {"reason": "La persona lo pidió"})
    assert client.get(f"/referrals/{referral.pk}/print/").status_code == 302
    assert web_client(third_cw).get(f"/referrals/{referral.pk}/print/").status_code == 404
    assert not AuditEvent.objects.filter(action="referral.printed").exists()


# --- names, not codes ---------------------------------------------------------------------------------


def test_the_subject_form_offers_countries_and_languages_by_name_common_ones_first(
    iom_caseworker, web_client
):
    page = html(web_client(iom_caseworker).get("/cases/new/"))
    nationality = page.split('name="nationality"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([A-Z]{3})"', nationality)[:6] == [
        "VEN",
        "COL",
        "ECU",
        "HTI",
        "CUB",
        "CHN",
    ]
    assert ">Venezuela<" in nationality and ">Haití<" in nationality
    languages = page.split('name="languages"')[1].split("</select>")[0]
    assert ">criollo haitiano<" in languages


def test_the_subject_form_keeps_the_iso_codes(iom_caseworker, web_client):
    from tests.web.test_caseworker_pages import PERSON, create_case

    client = web_client(iom_caseworker)
    case = create_case(client, nationality="HTI", languages=["ht", "fr"])
    assert case.subject.nationality == "HTI" and case.subject.languages == ["ht", "fr"]
    bad = client.post("/cases/new/", {**PERSON, "nationality": "XYZ"})
    assert bad.status_code == 200 and "has-error" in html(bad)


# --- API docs, favicon, notification texts, help texts -------------------------------------------------


def test_api_docs_sign_in_first_and_serve_only_own_files(iom, dp_caseworker, make_token, web_client, client):
    anonymous = client.get("/api/v1/docs/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(
        "/accounts/login/?next=/api/v1/docs/"
    )
    bearer = client.get("/api/v1/docs/", HTTP_AUTHORIZATION=f"Bearer {make_token(iom)}")
    assert bearer.status_code == 302
    assert client.get("/api/v1/schema/", HTTP_AUTHORIZATION=f"Bearer {make_token(iom)}").status_code == 200
    staff = web_client(dp_caseworker)
    page = staff.get("/api/v1/docs/")
    assert page.status_code == 200
    body = html(page)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in body
    assert not re.search(r'(src|href)="(https?:)?//', body)
    assert not page_problems(body.replace("<main", "<h1>API</h1><main"))
    script = staff.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    assert "validatorUrl" in script.content.decode()


def test_favicon_is_served_to_anyone(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("favicon.ico")
    assert client.get(response["Location"]).status_code == 200


def test_notifications_name_the_event_not_the_current_status(sent, dp_actor, iom_caseworker, web_client):
    from notifications import relay
    from notifications.models import OutboxMessage

    sent(path=[(dp_actor, "accept"), (dp_actor, "start"), (dp_actor, "complete", "Hecho")])
    from notifications.models import Delivery

    for outbox in OutboxMessage.objects.all():
        relay.process_outbox(outbox.pk)
    for delivery in Delivery.objects.filter(channel=Delivery.Channel.IN_APP, state=Delivery.State.PENDING):
        relay.deliver(delivery.pk)  # with a broker (REDIS_URL) they were only queued
    iom_caseworker.language = "en"
    iom_caseworker.save(update_fields=["language"])
    page = html(web_client(iom_caseworker).get("/notifications/"))
    assert "Referral accepted" in page and "Referral started" in page and "Referral completed" in page
    iom_caseworker.language = "es"
    iom_caseworker.save(update_fields=["language"])
    page = html(web_client(iom_caseworker).get("/notifications/"))
    assert "Remisión aceptada" in page and "Remisión iniciada" in page and "Remisión completada" in page


def test_help_texts_are_announced_with_ids_that_exist(iom_caseworker, web_client):
    page = html(web_client(iom_caseworker).get("/cases/new/"))
    assert 'aria-describedby="id_nationality_helptext"' in page
    assert 'id="id_nationality_helptext"' in page
    assert not page_problems(page)
    assert page_problems('<h1>x</h1><input id="a" aria-describedby="a_help"><label for="a">A</label>')


# --- one-code enrolment of the demo admins ----------------------------------------------------------


def _sign_in_to_enrolment(user):
    from django.test import Client

    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response["Location"].startswith("/accounts/otp/setup/")
    assert client.get(response["Location"]).status_code == 200  # the QR code of a new, unconfirmed device
    return client


def test_demo_code_printed_during_enrolment_signs_in_with_one_code(iom_admin):
    from io import StringIO

    from django.core.management import call_command

    client = _sign_in_to_enrolment(iom_admin)
    out = StringIO()
    call_command("demo_otp_code", iom_admin.username, stdout=out)
    response = client.post("/accounts/otp/setup/?next=/", {"otp_token": out.getvalue().strip()})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/", follow=True).status_code == 200
    assert client.get("/manage/users/").status_code == 200
    assert TOTPDevice.objects.filter(user=iom_admin, confirmed=True).count() == 1


def test_a_device_confirmed_meanwhile_takes_the_code_typed_on_the_enrolment_page(dp_admin):
    from tests.web.conftest import otp_code

    client = _sign_in_to_enrolment(dp_admin)
    device = TOTPDevice.objects.create(user=dp_admin, name="demo", confirmed=True)
    response = client.post("/accounts/otp/setup/?next=/", {"otp_token": otp_code(device)})
    assert response.status_code == 302 and not response["Location"].startswith("/accounts/otp")
    assert client.get("/manage/users/").status_code == 200


@pytest.mark.parametrize("who", ["sender", "receiver"])
def test_a_list_page_costs_the_same_queries_for_5_or_25_rows(
    who, sent, iom_caseworker, dp_caseworker, web_client
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = web_client(iom_caseworker if who == "sender" else dp_caseworker)
    counts = []
    for total in (5, 25):
        while Referral.objects.count() < total:
            sent()
        client.get("/referrals/")  # warm the per-process caches (content types, permission ids)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/referrals/")
        assert len(rows_of(response)) == total
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_the_staff_list_is_paginated(dp, dp_admin, make_user, web_client):
    for n in range(52):
        make_user(dp, Role.CASEWORKER, username=f"staff.{n:02d}")
    client = web_client(dp_admin)
    first = html(client.get("/manage/users/"))
    assert first.count('<tr data-user="') == 50 and 'rel="next"' in first
    assert html(client.get("/manage/users/?page=2")).count('<tr data-user="') == 3


def test_an_erased_person_is_listed_without_data_and_not_recorded_as_shown(sent, iom_caseworker, web_client):
    from referrals.data_rights import subject_erase

    referral = sent()
    subject_erase(case=referral.case, operator="test")
    client = web_client(iom_caseworker)
    page = html(client.get("/referrals/"))
    assert referral.reference in page and "María" not in page
    assert html(client.get("/cases/")).count("María") == 0
    assert not AuditEvent.objects.filter(action__in=["referral.list_viewed", "case.list_viewed"]).exists()
