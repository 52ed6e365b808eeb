"""The statistics page for supervisors, its CSV and XLSX exports, in Spanish and English (contract §7.5:
the published, perturbed figures of the API, with a footnote saying how they are protected)."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from audit.models import AuditEvent
from tests.web.conftest import logged_in_client, page_problems

from .conftest import DOCUMENTS, PERSON_NAMES, published

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
    cells = published(
        {
            ("DP", "female"): dataset["inbound"],
            ("IOM", "female"): dataset["accepted"],
            ("IOM", "male"): dataset["minors"],
        },
        2,
    )
    cross = response.context["cross"]
    columns = sorted({sex for _, sex in cells})
    assert [key for key, _label in cross.columns] == columns
    rows = {}
    for institution in sorted({code for code, _ in cells}):
        values = [cells.get((institution, sex), "–") for sex in columns]
        rows[institution] = {"label": institution, "cells": [str(v) for v in values], "values": values}
    assert cross.rows == list(rows.values())
    assert not page_problems(response.content.decode())


def test_the_default_period_is_the_last_twelve_months(
    db, iom_supervisor_client, iom_actor, dp_actor, dp, refer
):
    """Issue 22 item 6: a newcomer opens the page on figures, not on an empty last month."""
    from django.utils import timezone

    for _ in range(7):
        refer(iom_actor, dp_actor, dp, subject={})  # sent now
    response = iom_supervisor_client.get(PAGE)
    assert response.status_code == 200
    body = response.context["body"]
    today = timezone.now().date()
    assert body["to"] == today.isoformat()
    start = datetime.date.fromisoformat(body["from"])
    assert start.day == 1 and (today.year * 12 + today.month) - (start.year * 12 + start.month) == 11
    assert body["by"] == ["service"]
    assert body["rows"] and body["total"] >= 5


def test_a_total_of_zero_is_shown_as_zero(db, iom_supervisor_client):
    """Issue 22 item 6: an empty period's total reads 0, not a mark."""
    html = iom_supervisor_client.get(PAGE, {**MARCH, "by": "sex"}).content.decode()
    total = html.split('id="stat-total"', 1)[1].split("</div>", 1)[0]
    assert '<span class="stat-value">0</span>' in total
    assert "•" not in html


def test_the_page_states_the_protection(dataset, iom_supervisor, min_cell_2):
    for language, words in (("en", "Protected counts"), ("es", "Cifras protegidas")):
        client = client_in(iom_supervisor, language)
        html = client.get(PAGE, {**MARCH, "by": "sex"}, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        note = html.split('id="statistics-note"', 1)[1].split("</p>", 1)[0]
        assert words in note and "±2" in note


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
    ("language", "header", "note"),
    [("es", "Sexo", "Cifras protegidas"), ("en", "Sex", "Protected counts")],
)
def test_the_csv_export(dataset, iom_supervisor, min_cell_2, language, header, note):
    client = client_in(iom_supervisor, language)
    response = client.get(PAGE + "export.csv", {**MARCH, "by": "sex"}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith(
        'attachment; filename="statistics-IOM-20260301-20260331'
    )
    lines = body_text(response).splitlines()
    assert lines[0].split(",")[:2] == [header, "Remisiones" if language == "es" else "Referrals"]
    expected = published({"female": dataset["accepted"] + dataset["inbound"], "male": dataset["minors"]}, 2)
    everything = dataset["accepted"] + dataset["minors"] + dataset["inbound"]
    rows = lines[1 : 1 + len(expected)]
    assert [int(line.split(",")[1]) for line in rows] == list(expected.values())
    assert lines[1 + len(expected)].split(",")[1] == str(published({"t": everything}, 2)["t"])
    assert lines[-1].strip('"').startswith(note) and "±2" in lines[-1]  # the footnote
    assert not [s for s in SECRETS if s in "\n".join(lines)]
    event = AuditEvent.objects.get(action="statistics.exported")
    assert event.detail == {"from": "2026-03-01", "to": "2026-03-31", "by": ["sex"], "format": "csv"}


def test_small_counts_stay_out_of_the_exports(dataset, iom_supervisor_client):
    """With the default min_cell (5) the 2 boys are published as 0 (left out): no count from 1 to 4."""
    response = iom_supervisor_client.get(PAGE + "export.csv", {**MARCH, "by": "sex"})
    lines = body_text(response).splitlines()
    assert not any(line.startswith(("Masculino", "Male")) for line in lines)
    xlsx = iom_supervisor_client.get(PAGE + "export.xlsx", {**MARCH, "by": "sex"})
    rows = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    counts = [row[1] for row in rows if len(row) > 1 and isinstance(row[1], int)]  # the count column
    assert counts and not [count for count in counts if 1 <= count <= 4]
    assert not [row for row in rows if row[0] in ("Masculino", "Male")]


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
    cells = published(
        {
            ("DP", "female"): dataset["inbound"],
            ("IOM", "female"): dataset["accepted"],
            ("IOM", "male"): dataset["minors"],
        },
        2,
    )
    label = (
        {"female": "Femenino", "male": "Masculino"}
        if language == "es"
        else {"female": "Female", "male": "Male"}
    )
    table = [row[:3] for row in rows if row and row[0] in ("DP", "IOM")]
    assert table == [(code, label[sex], count) for (code, sex), count in cells.items()]
    note = "Cifras protegidas" if language == "es" else "Protected counts"
    assert [row[0] for row in rows if row and str(row[0]).startswith(note)]  # the footnote
    cross = list(workbook.worksheets[1].iter_rows(values_only=True))
    columns = sorted({sex for _, sex in cells})
    assert cross[1:] == [
        (code, *(cells.get((code, sex), "–") for sex in columns)) for code in sorted({c for c, _ in cells})
    ]
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
