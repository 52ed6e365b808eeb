"""Strict JSON input fields (contract §6.1): a value must already have its JSON type.

DRF's fields coerce — ``123`` becomes the name ``"123"``, ``"yes"`` and ``"false"`` become booleans, a
date becomes a date-time at midnight, an integer becomes a UUID. A partner system that sends such values
has a bug that must surface as a 400, not be silently stored. Every API input field comes from here.
"""

from __future__ import annotations

import re

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: RFC 3339 date-time: a date, ``T`` (or a space), hours and minutes at least.
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


class _StringOnly:
    """Refuses anything but a JSON string before the field's own parsing."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Expected a string.")
        return super().to_internal_value(data)


class CharField(_StringOnly, serializers.CharField):
    pass


class RegexField(_StringOnly, serializers.RegexField):
    pass


class EmailField(_StringOnly, serializers.EmailField):
    pass


class ChoiceField(_StringOnly, serializers.ChoiceField):
    pass


class UUIDField(_StringOnly, serializers.UUIDField):
    pass


class BooleanField(serializers.BooleanField):
    """``true`` or ``false`` only (not ``"yes"``, ``"false"``, ``1``)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("Expected true or false.")
        return data


class DateField(_StringOnly, serializers.DateField):
    """``YYYY-MM-DD`` only."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not _DATE.match(data):
            raise serializers.ValidationError("Expected a date as YYYY-MM-DD.")
        return super().to_internal_value(data)


class DateTimeField(_StringOnly, serializers.DateTimeField):
    """An RFC 3339 date-time with its time and its time zone (a bare date is refused, not read as
    midnight; a date-time without an offset is refused, not read in the server's time zone)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not _DATETIME.match(data):
            raise serializers.ValidationError("Expected an RFC 3339 date-time, e.g. 2026-11-27T10:00:00Z.")
        if isinstance(data, str) and _naive(data):
            raise serializers.ValidationError("A date-time needs a time zone (e.g. Z or -05:00).")
        return super().to_internal_value(data)


def _naive(raw: str) -> bool:
    """A well-formed date-time without an offset (a malformed one is left to the field's own message)."""
    try:
        value = parse_datetime(raw)
    except ValueError:
        return False
    return value is not None and value.tzinfo is None


class URLField(_StringOnly, serializers.URLField):
    pass
