"""Supervisors' pages: team workload, response times (numbers and the server-drawn SVG), the audit log
(visibility across institutions, filters, CSV export, the export's own audit event, formula injection)."""

from __future__ import annotations

import csv
import datetime
import io
import re

import pytest
from django.utils import timezone

from accounts.actor import actor_for_user
from accounts.choices import Role
from audit.exports import CSV_COLUMNS
from audit.models import AuditEvent
from audit.recorder import record
from referrals import worklists
from referrals.models import Referral

SUPERVISION_URLS = ["/supervision/workload/", "/supervision/response-times/", "/audit/", "/audit/export.csv"]


def html(response) -> str:
    return response.content.decode()


def row(page: str, attribute: str, value: str) -> str:
    """The <tr …attribute="value"…> … </tr> of a table."""
    match = re.search(rf'<tr [^>]*{attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', page, re.S)
    assert match, f"no row {attribute}={value}"
    return match.group(1)


def cell(row_html: str, column: str) -> int:
    match = re.search(rf'data-col="{column}">\s*(\d+)\s*<', row_html)
    assert match, column
    return int(match.group(1))


def sequences_of(page: str) -> list[str]:
    return re.findall(r'data-sequence="(\d+)"', page)


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


# --- access ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", SUPERVISION_URLS)
def test_caseworkers_get_403_on_supervision_pages(iom_caseworker_client, url):
    assert iom_caseworker_client.get(url).status_code == 403


@pytest.mark.parametrize("url", ["/supervision/workload/", "/supervision/response-times/"])
def test_admins_do_not_see_team_dashboards(iom_admin_client, url):
    assert iom_admin_client.get(url).status_code == 403


def test_admins_read_the_audit_log(iom_admin_client):
    assert iom_admin_client.get("/audit/").status_code == 200


def test_supervisor_without_the_second_factor_is_sent_to_the_totp_step(iom_supervisor):
    from django.test import Client

    client = Client()
    client.force_login(iom_supervisor)
    response = client.get("/supervision/workload/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/otp/")


def test_supervision_pages_through_the_real_sign_in(iom_supervisor, web_sign_in):
    client = web_sign_in(iom_supervisor)
    assert client.get("/supervision/workload/").status_code == 200


@pytest.mark.parametrize("url", SUPERVISION_URLS[:3])
def test_supervision_pages_are_accessible(iom_supervisor_client, assert_accessible, url):
    assert_accessible(iom_supervisor_client.get(url))


# --- workload ----------------------------------------------------------------------------------------


@pytest.fixture
def team(iom, dp, make_user, make_case, make_referral):
    """IOM: two caseworkers with open cases and sent referrals; DP: one referral in service, one waiting."""
    ana = make_user(iom, Role.CASEWORKER, username="ana.iom")
    beto = make_user(iom, Role.CASEWORKER, username="beto.iom")
    gone = make_user(iom, Role.CASEWORKER, username="gone.iom", is_active=False)
    dp_cw = make_user(dp, Role.CASEWORKER, username="carla.dp")
    a, b, d = actor_for_user(ana), actor_for_user(beto), actor_for_user(dp_cw)
    make_case(a)
    closed = make_case(a)
    closed.closed_at = timezone.now()
    closed.save(update_fields=["closed_at"])
    waiting = make_referral(a, dp, path=[(a, "send")])  # + 1 case for ana
    make_referral(  # + 1 case for beto
        b, dp, path=[(b, "send"), (d, "receive"), (d, "accept")], assign=("accept",)
    )
    make_referral(b, dp)  # a draft: open, + 1 case for beto
    cancelled = make_referral(b, dp, path=[(b, "send"), (b, "cancel", "Ya no es necesario")])
    return {"ana": ana, "beto": beto, "gone": gone, "dp_cw": dp_cw, "waiting": waiting, "c": cancelled}


def test_workload_counts_per_caseworker(team, iom_supervisor_client, dp_supervisor_client):
    page = html(iom_supervisor_client.get("/supervision/workload/"))
    ana, beto = row(page, "data-user", "ana.iom"), row(page, "data-user", "beto.iom")
    assert (cell(ana, "cases_open"), cell(ana, "outbound_open"), cell(ana, "inbound_in_service")) == (2, 1, 0)
    assert (cell(beto, "cases_open"), cell(beto, "outbound_open"), cell(beto, "inbound_in_service")) == (
        3,
        2,
        0,
    )
    assert 'data-user="gone.iom"' not in page  # deactivated staff carry no workload
    assert 'data-user="carla.dp"' not in page  # another institution's staff
    assert re.search(r'id="stat-queue"><span class="stat-value">0<', page)

    dp_page = html(dp_supervisor_client.get("/supervision/workload/"))
    carla = row(dp_page, "data-user", "carla.dp")
    assert cell(carla, "inbound_in_service") == 1
    assert re.search(r'id="stat-queue"><span class="stat-value">1<', dp_page)  # the waiting referral
    assert "ana.iom" not in dp_page


def test_workload_selector_runs_a_constant_number_of_queries(
    team, iom_supervisor, django_assert_max_num_queries
):
    actor = actor_for_user(iom_supervisor)
    with django_assert_max_num_queries(5):
        rows, queue = worklists.team_workload(actor)
    assert [r.user.username for r in rows] == ["ana.iom", "beto.iom"]
    assert queue == 0


# --- response times ----------------------------------------------------------------------------------


@pytest.fixture
def answered(iom, dp, iom_actor, dp_actor, make_referral):
    """Four referrals IOM → DP: answered after 2 h, 10 h and 30 h; one unanswered and overdue."""
    now = timezone.now()
    made = []
    for hours in (2, 10, 30):
        referral = make_referral(iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "receive")])
        sent = now - datetime.timedelta(days=3)
        Referral.objects.filter(pk=referral.pk).update(
            sent_at=sent, answered_at=sent + datetime.timedelta(hours=hours)
        )
        made.append(referral)
    late = make_referral(iom_actor, dp, path=[(iom_actor, "send")], urgency="urgent")
    Referral.objects.filter(pk=late.pk).update(response_due_at=now - datetime.timedelta(hours=5))
    on_time = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    return {"answered": made, "late": late, "on_time": on_time}


def test_response_times_numbers(answered, dp_supervisor):
    stats = worklists.response_times(actor_for_user(dp_supervisor))
    assert stats.total == 5
    assert stats.answered == 3
    assert stats.median_answer == datetime.timedelta(hours=10)
    assert stats.overdue == 1
    assert [r.pk for r in stats.overdue_referrals] == [answered["late"].pk]
    assert dict(stats.buckets) == {"≤ 24 h": 2, "1–3 d": 1, "3–7 d": 0, "7–14 d": 0, "> 14 d": 0}
    counts = {code: n for code, _label, n in stats.by_status}
    assert counts["received"] == 3 and counts["requested"] == 2

    outbound = worklists.response_times(actor_for_user(dp_supervisor), direction="outbound")
    assert outbound.total == 0 and outbound.median_answer is None


def test_response_times_page_shows_numbers_and_svg_charts(answered, dp_supervisor_client, assert_accessible):
    response = dp_supervisor_client.get("/supervision/response-times/")
    assert_accessible(response)
    page = html(response)
    assert re.search(r'id="stat-total"><span class="stat-value">5<', page)
    assert re.search(r'id="stat-answered"><span class="stat-value">3<', page)
    assert re.search(r'id="stat-overdue"><span class="stat-value">1<', page)
    assert 'data-minutes="600"' in page  # the median, 10 h
    charts = re.findall(r'<svg class="chart" role="img" aria-labelledby="([^"]+)"', page)
    assert len(charts) == 2
    for labelled_by in charts:
        for element_id in labelled_by.split():
            assert f'id="{element_id}"' in page
    assert page.count("<title id=") == 2
    start = page.index('aria-labelledby="status-chart-title')
    status_svg = page[start : page.index("</svg>", start)]
    bars = re.findall(r'<rect class="bar ([\w-]*)" x="\d+" y="\d+" width="(\d+)" height="\d+"', status_svg)
    assert ("bar-waiting", "360") in bars  # received: the longest bar
    assert re.search(r'<text class="chart-label"[^>]*>[^<]+</text>', status_svg)
    assert re.search(r'<text class="chart-value"[^>]*>3</text>', status_svg)
    assert f'data-referral="{answered["late"].pk}"' in page  # the overdue list
    assert f'data-referral="{answered["on_time"].pk}"' not in page


def test_response_times_outbound_direction(answered, iom_supervisor_client):
    page = html(iom_supervisor_client.get("/supervision/response-times/?direction=outbound"))
    assert re.search(r'id="stat-total"><span class="stat-value">5<', page)
    assert re.search(r'id="stat-overdue"><span class="stat-value">1<', page)
    inbound = html(iom_supervisor_client.get("/supervision/response-times/"))
    assert re.search(r'id="stat-total"><span class="stat-value">0<', inbound)


def test_response_times_of_an_empty_institution(third_supervisor_client, assert_accessible):
    response = third_supervisor_client.get("/supervision/response-times/")
    assert_accessible(response)
    assert '<svg class="chart"' in html(response)


# --- audit log ---------------------------------------------------------------------------------------


@pytest.fixture(params=["web", "api"])
def dp_read(request, iom, dp, iom_actor, dp_caseworker, make_referral, user_api, web_client):
    """IOM sends a referral to DP and a DP caseworker reads it (on its web page, or through the API)."""
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    if request.param == "web":
        response = web_client(dp_caseworker).get(f"/referrals/{referral.pk}/")
    else:
        response = user_api(dp_caseworker).get(f"/api/v1/referrals/{referral.pk}/")
    assert response.status_code == 200
    return referral


def test_iom_supervisor_sees_the_dp_caseworkers_read_of_a_referral_iom_sent(dp_read, iom_supervisor_client):
    response = iom_supervisor_client.get("/audit/")
    page = html(response)
    event = AuditEvent.objects.get(action="referral.viewed", object_id=str(dp_read.pk))
    line = row(page, "data-sequence", str(event.sequence))
    assert "dp.cw" in line and "DP" in line
    assert 'data-action="referral.viewed"' in page


def test_a_third_institution_sees_none_of_it(dp_read, third_supervisor_client):
    page = html(third_supervisor_client.get("/audit/"))
    assert "dp.cw" not in page and "iom.cw" not in page
    assert str(dp_read.pk)[:8] not in page
    assert set(re.findall(r'data-action="([^"]+)"', page)) == {"auth.login"}  # their own sign-in only


def test_audit_log_filters(dp_read, iom_supervisor_client):
    viewed = AuditEvent.objects.get(action="referral.viewed", object_id=str(dp_read.pk))
    page = html(iom_supervisor_client.get("/audit/?action=referral.viewed"))
    assert set(re.findall(r'data-action="([^"]+)"', page)) == {"referral.viewed"}

    page = html(iom_supervisor_client.get("/audit/?actor=dp.cw"))
    assert f'data-sequence="{viewed.sequence}"' in page
    assert 'data-action="case.created"' not in page  # that one was iom.cw

    page = html(iom_supervisor_client.get(f"/audit/?object_id={dp_read.case_id}"))
    assert f'data-sequence="{viewed.sequence}"' in page  # an object id matches events on its case too

    today = timezone.localdate()
    page = html(iom_supervisor_client.get(f"/audit/?date_from={today + datetime.timedelta(days=1)}"))
    assert "data-sequence=" not in page
    page = html(iom_supervisor_client.get(f"/audit/?date_from={today}&date_to={today}"))
    assert f'data-sequence="{viewed.sequence}"' in page


def test_invalid_filters_show_errors_not_the_whole_log(dp_read, iom_supervisor_client):
    response = iom_supervisor_client.get("/audit/?action=1; DROP TABLE")
    assert response.status_code == 200
    assert "data-sequence=" not in html(response)
    assert 'class="error"' in html(response)
    assert iom_supervisor_client.get("/audit/export.csv?action=1; DROP TABLE").status_code == 400


def test_audit_log_paginates_and_keeps_the_filters(iom, iom_supervisor, iom_supervisor_client):
    for i in range(55):
        record(
            actor=actor_for_user(iom_supervisor),
            action="case.viewed",
            object_id=f"obj-{i}",
            institutions=[iom],
        )
    page = html(iom_supervisor_client.get("/audit/?action=case.viewed"))
    assert page.count("data-sequence=") == 50
    older = re.search(r'href="\?action=case.viewed&amp;before=(\d+)"', page)
    assert older  # positioned by sequence: no page number, no COUNT over the log
    second = html(iom_supervisor_client.get(f"/audit/?action=case.viewed&before={older.group(1)}"))
    assert second.count("data-sequence=") == 5
    assert 'rel="next"' not in second  # no older page
    newer = re.search(r'href="\?action=case.viewed&amp;after=(\d+)"', second)
    back = html(iom_supervisor_client.get(f"/audit/?action=case.viewed&after={newer.group(1)}"))
    assert sequences_of(back) == sequences_of(page)
    assert 'href="/audit/export.csv?action=case.viewed"' in page


def test_csv_export_content_and_its_own_audit_event(dp_read, iom_supervisor, iom_supervisor_client):
    response = iom_supervisor_client.get("/audit/export.csv?action=referral.viewed")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-IOM-')
    assert "no-store" in response["Cache-Control"]
    rows = read_csv(response)
    header, data = rows[0], rows[1:]
    assert tuple(header) == CSV_COLUMNS  # the one audit export: the API's columns exactly
    assert len(data) == 1
    line = dict(zip(header, data[0], strict=True))
    assert line["actor_label"] == "dp.cw" and line["actor_institution"] == "DP"
    assert line["object_id"] == str(dp_read.pk) and line["action"] == "referral.viewed"

    exported = AuditEvent.objects.filter(action="audit.exported").get()
    assert exported.actor_label == iom_supervisor.username
    assert exported.actor_institution == "IOM"
    assert exported.detail == {"filters": {"action": "referral.viewed"}, "format": "csv"}


def test_csv_export_of_a_third_institution_is_empty(dp_read, third_supervisor_client):
    rows = read_csv(third_supervisor_client.get("/audit/export.csv"))
    header = rows[0]
    assert header[0] == "id"
    lines = [dict(zip(header, r, strict=True)) for r in rows[1:]]
    assert {r["actor_institution"] for r in lines} == {"UNHCR"}  # their own sign-in and this export only
    assert {r["action"] for r in lines} == {"auth.login", "audit.exported"}


@pytest.mark.parametrize(
    "evil", ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "＝1+1"]
)
def test_csv_export_defuses_spreadsheet_formulas(iom, iom_supervisor_client, evil):
    record(action="auth.login_failed", actor_type="anonymous", actor_label=evil, actor_institution="IOM")
    rows = read_csv(iom_supervisor_client.get("/audit/export.csv?action=auth.login_failed"))
    labels = [dict(zip(rows[0], r, strict=True))["actor_label"] for r in rows[1:]]
    assert labels == ["'" + evil]
