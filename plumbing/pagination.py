"""Cursor pagination for every list (contract §3): page_size defaults to 50, clamped to 100.

A cursor is opaque and signed by nothing: a tampered or garbage cursor is a 400 problem, never a 500.
"""

import datetime
from base64 import b64decode
from urllib.parse import parse_qs

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import NotFound

from plumbing.problems import ProblemError


def _well_formed(raw: str) -> bool:
    """A cursor we issued: base64 of a query string with only the keys o, r, p (DRF's format)."""
    try:
        decoded = b64decode(raw.encode("ascii"), validate=True).decode("ascii")
    except (ValueError, UnicodeError):
        return False
    tokens = parse_qs(decoded, keep_blank_values=True)
    return bool(tokens) and set(tokens) <= {"o", "r", "p"}


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-created_at"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            value = int(raw[:12])
        except ValueError:
            return self.page_size
        return max(1, min(value, self.max_page_size))

    def decode_cursor(self, request):
        raw = request.query_params.get(self.cursor_query_param)
        if raw is not None and (len(raw) > 512 or not _well_formed(raw)):
            raise self._invalid()
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self._invalid() from None
        except (ValueError, TypeError, OverflowError):
            raise self._invalid() from None
        if cursor is not None and cursor.position is not None:
            # Datetime positions are compared in UTC: a forged offset (e.g. +21:00) is not for the database.
            try:
                moment = parse_datetime(cursor.position)
                if moment is not None and moment.tzinfo is not None:
                    cursor = cursor._replace(position=str(moment.astimezone(datetime.UTC)))
            except (ValueError, OverflowError):
                raise self._invalid() from None
        return cursor

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, DataError):  # a forged cursor position that is not a valid value
            raise self._invalid() from None

    @staticmethod
    def _invalid():
        return ProblemError(
            "validation-error", 400, "The cursor is invalid.", {"cursor": ["Invalid or expired cursor."]}
        )


class OldestFirstCursorPagination(CursorPagination):
    ordering = ("created_at", "id")
