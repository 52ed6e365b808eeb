"""Query strings of the API views: a malformed value is a 400, never a 500; an unknown parameter is a
400 naming it (contract §7.5: lists refuse what they do not know)."""

from __future__ import annotations

import datetime
import re

from django.http import Http404
from django.utils.dateparse import parse_datetime

from plumbing.problems import ProblemError

#: Longer than any RFC 3339 date-time (with microseconds and an offset): refused without parsing.
_MAX_DATETIME_LENGTH = 40


def parse_aware_datetime(raw: str) -> datetime.datetime | None:
    """An RFC 3339 date-time with a time zone, converted to UTC; None when it is not one.

    None for anything malformed, naive (no offset), or out of range: ``parse_datetime`` raises
    ``ValueError`` on an offset such as ``+99:00`` and converting a date near year 1 or 9999 to UTC
    raises ``OverflowError``. The value is compared in UTC: any offset Python accepts, the database
    accepts once converted. A ``+`` left unencoded in a query string arrives as a space: it is put back.
    """
    if not isinstance(raw, str) or len(raw) >= _MAX_DATETIME_LENGTH:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))
        if value is None or value.tzinfo is None or value.utcoffset() is None:
            return None
        return value.astimezone(datetime.UTC)
    except (ValueError, OverflowError):
        return None


# --- strict lists (contract §7.5) ---------------------------------------------------------------------

#: Known on every list: the pagination's cursor and page size, and DRF's format override.
ALWAYS_KNOWN = frozenset({"cursor", "page_size", "format"})
#: A page size is a whole number from 1 on (above the maximum it is clamped, contract §3).
_PAGE_SIZE = re.compile(r"^[0-9]{1,9}$")


def query_errors(params, known=frozenset(), *, repeatable=frozenset()) -> dict[str, list[str]]:
    """What is wrong with a list's query string, by parameter: unknown parameters, a parameter given more
    than once (unless ``repeatable``), a malformed ``page_size``. Empty when all is well."""
    errors: dict[str, list[str]] = {}
    for name in sorted(set(params) - ALWAYS_KNOWN - set(known)):
        errors[name[:40]] = ["Unknown parameter."]
    for name, values in params.lists():
        if name[:40] not in errors and len(values) > 1 and name not in repeatable:
            errors[name[:40]] = ["Give this parameter once."]
    page_size = params.get("page_size")
    bad_size = page_size is not None and (not _PAGE_SIZE.match(page_size) or int(page_size) < 1)
    if bad_size and "page_size" not in errors:
        errors["page_size"] = ["A whole number from 1 (at most 100 are returned)."]
    return errors


def check_query(params, known=frozenset(), *, repeatable=frozenset()) -> None:
    """400 problem+json naming every bad parameter of a list's query string (see :func:`query_errors`)."""
    errors = query_errors(params, known, repeatable=repeatable)
    if errors:
        raise ProblemError("validation-error", 400, "Invalid query parameters.", errors)


class StrictQuery:
    """Mixin of every API view: a GET refuses what its query string holds beyond ``query_parameters``
    (plus :data:`ALWAYS_KNOWN`) with a 400 naming the parameter — checked after authentication,
    permissions and throttling (a 401 or 403 comes first). A view's own values (a status, an ordering)
    are checked by the view, with the parameter's name."""

    #: The view's own query parameters (filters, ordering), besides cursor, page_size and format.
    query_parameters: frozenset[str] = frozenset()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("GET", "HEAD"):
            check_query(request.query_params, self.query_parameters)

    def perform_content_negotiation(self, request, force=False):
        """An unknown ``format`` is a 400 naming it (DRF answers 404)."""
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            if force or "format" not in request.query_params:
                raise
            raise ProblemError(
                "validation-error",
                400,
                "Invalid query parameters.",
                {"format": ["Unknown format; one of: " + ", ".join(self._formats()) + "."]},
            ) from None

    def _formats(self) -> list[str]:
        return sorted({renderer.format for renderer in self.get_renderers() if renderer.format})


def bad_parameter(name: str, message: str) -> ProblemError:
    """The 400 of one query parameter's bad value (not "the request body")."""
    return ProblemError("validation-error", 400, "Invalid query parameters.", {name: [message]})
