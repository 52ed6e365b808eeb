"""The statistics page for supervisors of every institution, with its CSV and XLSX exports and print layout.

The figures are those of the API (``reporting.reads``): the same scope, projection and perturbation. The
page's read records ``statistics.viewed``; each export records ``statistics.exported``.
"""

from __future__ import annotations

import datetime
import io

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from openpyxl import Workbook
from openpyxl.styles import Font

from plumbing.csv_writer import csv_response, neutralise
from web.access import statistics_required

from . import presentation
from .forms import StatisticsForm
from .reads import cached_statistics, record_export, referral_statistics
from .statistics import StatisticsQuery

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _form(request) -> StatisticsForm:
    return StatisticsForm(request.GET or None, today=timezone.now().astimezone(datetime.UTC).date())


@statistics_required
@require_GET
def statistics_page(request):
    form = _form(request)
    if not form.is_valid():
        return render(request, "reporting/statistics.html", {"form": form}, status=400)
    actor = request.actor
    body = referral_statistics(actor=actor, query=form.query, door="web").body
    context = {"form": form, "body": body, "params": form.params()}
    context["period"] = presentation.period_text(body)
    context["note"] = presentation.protection_note(body)
    context["dimensions"] = [presentation.dimension_label(d) for d in body["by"]]
    if len(body["by"]) == 1:
        context["rows"] = presentation.simple_rows(body)
        context["chart"] = presentation.chart(body)
    else:
        context["cross"] = presentation.cross_table(body)
        first = StatisticsQuery(form.query.date_from, form.query.date_to, body["by"][:1])
        context["chart"] = presentation.chart(cached_statistics(actor.institution, first).body)
    context["total"] = presentation.number_text(body["total"])
    return render(request, "reporting/statistics.html", context)


def _export_body(request):
    form = _form(request)
    if not form.is_valid():
        return None, None
    body = cached_statistics(request.actor.institution, form.query).body
    return form.query, body


def _filename_stem(request, query: StatisticsQuery) -> str:
    return f"statistics-{request.actor.institution.code}-{query.date_from:%Y%m%d}-{query.date_to:%Y%m%d}"


def _bad_request():
    return HttpResponse(
        _("Correct the period and the dimensions first."), status=400, content_type="text/plain"
    )


@statistics_required
@require_GET
def statistics_csv(request):
    query, body = _export_body(request)
    if body is None:
        return _bad_request()
    record_export(actor=request.actor, query=query, file_format="csv")
    return csv_response(
        _filename_stem(request, query), presentation.export_header(body), presentation.export_rows(body)
    )


def _cell(value):
    """A number stays a number; text goes through the CSV writer's formula neutralisation."""
    return value if isinstance(value, int | float) else neutralise(value)


@statistics_required
@require_GET
def statistics_xlsx(request):
    query, body = _export_body(request)
    if body is None:
        return _bad_request()
    record_export(actor=request.actor, query=query, file_format="xlsx")
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Statistics")[:31]
    sheet.append(
        [neutralise(_("Referrals sent or received by %(code)s") % {"code": request.actor.institution.code})]
    )
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([neutralise(presentation.period_text(body))])
    sheet.append([neutralise(presentation.protection_note(body))])
    sheet.append([])
    sheet.append([_cell(v) for v in presentation.export_header(body)])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for line in presentation.export_rows(body):
        sheet.append([_cell(v) for v in line])
    if len(body["by"]) == 2:
        table = presentation.cross_table(body)
        cross = workbook.create_sheet(_("Table")[:31])
        corner = f"{presentation.dimension_label(table.first)} / {presentation.dimension_label(table.second)}"
        cross.append([_cell(corner)] + [_cell(label) for _key, label in table.columns])
        for row in table.rows:
            cross.append([_cell(row["label"]), *(_cell(value) for value in row["values"])])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{_filename_stem(request, query)}.xlsx"'
    response["Cache-Control"] = "no-store"
    return response
