"""The one CSV writer of the system: every CSV it produces (audit exports, statistics, …) goes through it.

Cells that a spreadsheet would read as a formula — beginning with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return (and their full-width forms) — are prefixed with ``'`` (contract §6.1, OWASP "CSV
injection"), whatever their origin: a request id, an action label, a figure.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

#: What makes a spreadsheet start a formula (the ASCII forms and their full-width twins).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def neutralise(value) -> str:
    """The cell's text, prefixed with ``'`` when a spreadsheet would evaluate it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose ``write`` returns the line: csv.writer then yields text to stream."""

    def write(self, value):
        return value


def csv_lines(header: Iterable, rows: Iterable[Iterable]) -> Iterator[str]:
    """The header then each row as CSV text lines, every cell neutralised."""
    writer = csv.writer(_Echo())
    yield writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        yield writer.writerow([neutralise(cell) for cell in row])


def csv_text(header: Iterable, rows: Iterable[Iterable]) -> str:
    """The whole CSV as one string (small exports, tests)."""
    return "".join(csv_lines(header, rows))


def csv_response(filename_stem: str, header: Iterable, rows: Iterable[Iterable]) -> StreamingHttpResponse:
    """A streamed ``text/csv`` attachment named ``<stem>-<UTC stamp>.csv``, never cached."""
    stamp = timezone.now().astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename_stem}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
