"""Parsing query-string values shared by the API views: a malformed value is a 400, never a 500."""

from __future__ import annotations

import datetime

from django.utils.dateparse import parse_datetime

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
