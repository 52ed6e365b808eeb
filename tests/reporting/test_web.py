"""The statistics page for supervisors, its CSV and XLSX exports, in Spanish and English."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from audit.models import AuditEvent
from tests.web.conftest import logged_in_client, page_problems

from .conftest import DOCUMENTS, PERSON_NAMES

PAGE = "/supervision/statistics/"
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
SECRETS = [*PERSON_NAMES, *DOCUMENTS, "1990-05-01", "01/05/1990", "secreto"]


def client_in(user, language: str):
    """A signed-in client of ``user``, whose chosen language is ``language``."""
    user.language = language
    user.save(update_fields=["language"])
    return logged_in_client(user)


def body_text(response) -> str:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_the_page_in_spanish(dataset, iom_supervisor, min_cell_2):
    response = client_in(iom_supervisor, "es").get(PAGE, {**MARCH, "by": "sex"}, HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Estadísticas de remisiones" in html
    assert "Femenino" in html or "Mujer" in html
    assert 'id="statistics-table"' in html and "<svg" in html
    assert not page_problems(html), page_problems(html)
    assert not [s for s in SECRETS if s in html]


def test_the_page_in_english(dataset, iom_supervisor, min_cell_2):
    client = client_in(iom_supervisor, "en")
    response = client.get(PAGE, {**MARCH, "by": "sex"}, HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Statistics of referrals" in html
    assert "Female" in html and "Male" in html
    assert not page_problems(html), page_problems(html)


def test_two_dimensions_are_a_table_first_down_second_across(dataset, iom_supervisor, min_cell_2):
    response = client_in(iom_supervisor, "en").get(
        PAGE, {**MARCH, "by": "from_institution", "then": "sex"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    cross = response.context["cross"]
    assert cross.columns == [("female", "Female"), ("male", "Male")]
    assert cross.rows == [
        {"label": "DP", "cells": ["•", "–"], "values": ["•", "–"]},
        {"label": "IOM", "cells": ["6", "2"], "values": [6, 2]},
    ]
    assert not page_problems(response.content.decode())


def test_the_default_period_is_the_previous_month(db, iom_supervisor_client):
    response = iom_supervisor_client.get(PAGE)
    assert response.status_code == 200
    assert response.context["body"]["by"] == ["service"]
    assert response.context["body"]["rows"] == []


def test_a_bad_period_is_refused_with_the_form(db, iom_supervisor_client):
    response = iom_supervisor_client.get(PAGE, {"from": "2026-04-01", "to": "2026-03-01", "by": "sex"})
    assert response.status_code == 400
    assert "body" not in response.context
    assert response.context["form"].errors
    assert not AuditEvent.objects.filter(action__startswith="statistics.").exists()


def test_the_page_read_is_audited(dataset, iom_supervisor_client):
    iom_supervisor_client.get(PAGE, {**MARCH, "by": "month", "then": "service"})
    event = AuditEvent.objects.get(action="statistics.viewed")
    assert event.detail == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "by": ["month", "service"],
        "door": "web",
    }
    assert event.actor_label == "iom.supervisor"


def test_supervisors_and_admins_only(dataset, iom_caseworker, iom, make_user):
    """Contract §7.1: supervisors and admins; caseworkers get 403."""
    from accounts.choices import Role

    assert logged_in_client(iom_caseworker).get(PAGE).status_code == 403
    assert logged_in_client(make_user(iom, Role.ADMIN, username="iom.admin")).get(PAGE).status_code == 200
    from django.test import Client

    response = Client().get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_receiver_s_supervisor_sees_its_own_figures(dataset, dp_supervisor, min_cell_2):
    response = client_in(dp_supervisor, "en").get(PAGE, {**MARCH, "by": "sex"}, HTTP_ACCEPT_LANGUAGE="en")
    labels = [row["label"] for row in response.context["rows"]]
    assert labels == ["Female", "Unknown"]  # the boys' consent did not give DP their identity


@pytest.mark.parametrize(
    ("language", "header", "suppressed"),
    [("es", "Sexo", "Suprimido"), ("en", "Sex", "Suppressed")],
)
def test_the_csv_export(dataset, iom_supervisor, min_cell_2, language, header, suppressed):
    client = client_in(iom_supervisor, language)
    response = client.get(PAGE + "export.csv", {**MARCH, "by": "sex"}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith(
        'attachment; filename="statistics-IOM-20260301-20260331'
    )
    lines = body_text(response).splitlines()
    assert lines[0].split(",")[:3] == [header, "Remisiones" if language == "es" else "Referrals", suppressed]
    assert len(lines) == 4  # header, female, male, total
    assert lines[1].split(",")[1:3] == ["7", "no"]
    assert lines[3].split(",")[1] == "9"
    assert not [s for s in SECRETS if s in "\n".join(lines)]
    event = AuditEvent.objects.get(action="statistics.exported")
    assert event.detail == {"from": "2026-03-01", "to": "2026-03-31", "by": ["sex"], "format": "csv"}


def test_suppressed_counts_stay_out_of_the_exports(dataset, iom_supervisor_client):
    """With the default min_cell (5) male 2 and its complement female 7 are suppressed: no 2, no 7."""
    response = iom_supervisor_client.get(PAGE + "export.csv", {**MARCH, "by": "sex"})
    lines = body_text(response).splitlines()
    assert [line.split(",")[1] for line in lines[1:3]] == ["", ""]
    xlsx = iom_supervisor_client.get(PAGE + "export.xlsx", {**MARCH, "by": "sex"})
    values = [
        cell
        for row in load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True)
        for cell in row
    ]
    assert 2 not in values and 7 not in values and 9 in values


@pytest.mark.parametrize(("language", "title"), [("es", "Estadísticas"), ("en", "Statistics")])
def test_the_xlsx_export(dataset, iom_supervisor, min_cell_2, language, title):
    client = client_in(iom_supervisor, language)
    response = client.get(
        PAGE + "export.xlsx",
        {**MARCH, "by": "from_institution", "then": "sex"},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames[0] == title
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    table = [row for row in rows if row and row[0] in ("DP", "IOM")]
    assert [row[:3] for row in table] == [
        ("DP", "Femenino" if language == "es" else "Female", None),
        ("IOM", "Femenino" if language == "es" else "Female", 6),
        ("IOM", "Masculino" if language == "es" else "Male", 2),
    ]
    cross = list(workbook.worksheets[1].iter_rows(values_only=True))
    assert cross[1:] == [("DP", "•", "–"), ("IOM", 6, 2)]
    text = repr(rows) + repr(cross)
    assert not [s for s in SECRETS if s in text]
    event = AuditEvent.objects.get(action="statistics.exported")
    assert event.detail["format"] == "xlsx"


def test_a_bad_export_request_is_400(dataset, iom_supervisor_client):
    response = iom_supervisor_client.get(PAGE + "export.csv", {"from": "x", "to": "2026-03-31", "by": "sex"})
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="statistics.exported").exists()


def test_the_print_layout_and_button_are_served(dataset, iom_supervisor_client):
    html = iom_supervisor_client.get(PAGE, {**MARCH, "by": "month"}).content.decode()
    assert "reporting/statistics.css" in html and "reporting/statistics.js" in html
    assert "data-print" in html
    css = (Path(__file__).resolve().parents[2] / "reporting/static/reporting/statistics.css").read_text()
    assert "@media print" in css and ".statistics-picker" in css


def test_spreadsheet_cells_never_start_a_formula():
    from reporting.views import _cell

    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert _cell("@SUM(1)") == "'@SUM(1)"
    assert _cell(7) == 7 and _cell(2.5) == 2.5
