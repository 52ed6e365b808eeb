"""Clean data at every door (contract §7.5): what a stored value may be, whoever sends it.

The rules of *values* — which characters a text may hold, which codes exist, which dates are plausible —
written once. :mod:`referrals.rules` applies them to a subject, a consent and the free texts of a
referral; the services apply those to what they store, so the API, the web forms, the management
commands and any later door get the same verdicts; ``manage.py check_data`` applies them to what was
stored before they existed. Each function returns an error message, or ``None`` when the value is clean:
the messages never repeat the value (it may be personal data).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from functools import cache

import pycountry
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

#: The oldest date (and instant, in UTC) any date or date-time may hold.
EARLIEST_DATE = datetime.date(1900, 1, 1)
EARLIEST_DATETIME = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
#: How far ahead of our clock a date or date-time may be (clocks and time zones differ).
FUTURE_LEEWAY = datetime.timedelta(days=1)

#: Unicode bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069):
#: they make a text read differently from what it holds (``\u202eevil`` shows as ``live``).
BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
#: Control characters a text may hold: tab and newline (a CRLF line break is stored as a newline).
ALLOWED_CONTROLS = frozenset("\t\n")
#: A language tag: an ISO 639 code (alpha-2, or alpha-3), optionally a region or script subtag.
LANGUAGE_TAG = re.compile(r"^([a-z]{2,3})(-[A-Za-z0-9]{2,8})?$")

MESSAGES = {
    "control": _("The text contains a control character (only tab and line breaks are allowed)."),
    "bidi": _("The text contains a bidirectional formatting character (U+202A–U+202E, U+2066–U+2069)."),
    "unicode": _("The text is not valid Unicode."),
    "country": _("Not an ISO 3166-1 alpha-3 country code (e.g. VEN)."),
    "language": _("Not an ISO 639 language code (e.g. es, ht, yue)."),
    "naive": _("A date-time needs a time zone (e.g. Z or -05:00)."),
    "too_old": _("Dates before 1900-01-01 are not accepted."),
    "too_new": _("More than one day in the future."),
}


def normalized_text(value: str) -> str:
    """The text as it is stored: line breaks as ``\\n`` (browsers send a textarea's as CRLF)."""
    return value.replace("\r\n", "\n")


def text_error(value: str | None) -> str | None:
    """Why a free text or a name may not be stored (after :func:`normalized_text`), or None."""
    if not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return str(MESSAGES["unicode"])
    for char in value:
        if char in BIDI_CONTROLS:
            return str(MESSAGES["bidi"])
        if char not in ALLOWED_CONTROLS and unicodedata.category(char) == "Cc":  # C0, DEL and C1
            return str(MESSAGES["control"])
    return None


@cache
def _countries() -> frozenset[str]:
    return frozenset(country.alpha_3 for country in pycountry.countries)


@cache
def _languages() -> frozenset[str]:
    codes = set()
    for language in pycountry.languages:
        codes.add(language.alpha_3)
        if hasattr(language, "alpha_2"):
            codes.add(language.alpha_2)
    return frozenset(codes)


def country_error(code: str | None) -> str | None:
    """An existing ISO 3166-1 alpha-3 code (upper case), or empty; else the message."""
    if not code or (isinstance(code, str) and code in _countries()):
        return None
    return str(MESSAGES["country"])


def language_error(codes) -> str | None:
    """A list of existing ISO 639 codes (``es``, ``yue``; a subtag as in ``es-PA`` is allowed)."""
    for code in codes or ():
        match = LANGUAGE_TAG.match(code) if isinstance(code, str) else None
        if match is None or match.group(1) not in _languages():
            return str(MESSAGES["language"])
    return None


def date_error(value: datetime.date | None, *, today: datetime.date | None = None) -> str | None:
    """A date from 1900-01-01 to one day after today (UTC)."""
    if value is None:
        return None
    today = today or timezone.now().astimezone(datetime.UTC).date()
    if value < EARLIEST_DATE:
        return str(MESSAGES["too_old"])
    if value > today + FUTURE_LEEWAY:
        return str(MESSAGES["too_new"])
    return None


def datetime_error(value: datetime.datetime | None) -> str | None:
    """A date-time with a time zone, from 1900-01-01T00:00Z to one day after now."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return str(MESSAGES["naive"])
    if value < EARLIEST_DATETIME:
        return str(MESSAGES["too_old"])
    if value > timezone.now() + FUTURE_LEEWAY:
        return str(MESSAGES["too_new"])
    return None
