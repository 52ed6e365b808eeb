"""Domain rules of a subject (the migrant), written once for every door (contract §6.1).

The API's serializers and the web's forms declare only the shape of their input (types, lengths,
choices); whether a subject is *coherent* — a minor's date of birth, a document number with its type,
the characters of a phone number — is decided here, and the services apply it to what they store. A
door that wants its errors next to its fields calls :func:`subject_errors` first; the services call
:func:`check_subject` whatever the door did, so no door can skip a rule.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import DocumentType
from .crypto import normalize_document_number
from .errors import InvalidInput

#: Digits, spaces and ``+ - ( )`` only (contract §6.1).
PHONE = re.compile(r"^[0-9 +()\-]*$")
EARLIEST_BIRTH = datetime.date(1900, 1, 1)

MESSAGES = {
    "minor_adult": _("By the date of birth the person is 18 or older: they cannot be marked as a minor."),
    "document_without_type": _("A document number needs a document type (not 'none')."),
    "phone": _("Digits, spaces and + ( ) - only."),
    "future_birth": _("The date of birth cannot be in the future."),
    "old_birth": _("The date of birth is not plausible."),
    "consent_required_field": _("Required when consent is given."),
    "consent_categories": _("Choose at least one data category."),
    "consent_future": _("Consent cannot be obtained in the future."),
}
#: Clocks differ: a consent time this far ahead of ours is still accepted.
CONSENT_CLOCK_SKEW = datetime.timedelta(minutes=5)


def age_on(date_of_birth: datetime.date, day: datetime.date) -> int:
    """Completed years on ``day`` (18 from the 18th birthday on; 29 February counts from 1 March)."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def today_utc() -> datetime.date:
    return timezone.now().astimezone(datetime.UTC).date()


def subject_errors(subject: Mapping, *, today: datetime.date | None = None) -> dict[str, list[str]]:
    """The rule violations of a (complete or merged) subject, by field; empty when coherent.

    ``is_minor: false`` for someone under 18 is accepted: ages are often uncertain.
    """
    today = today or today_utc()
    errors: dict[str, list[str]] = {}
    dob = subject.get("date_of_birth")
    if isinstance(dob, datetime.date):
        if dob > today:
            errors.setdefault("date_of_birth", []).append(str(MESSAGES["future_birth"]))
        elif dob < EARLIEST_BIRTH:
            errors.setdefault("date_of_birth", []).append(str(MESSAGES["old_birth"]))
        elif subject.get("is_minor") and age_on(dob, today) >= 18:
            errors.setdefault("is_minor", []).append(str(MESSAGES["minor_adult"]))
    number = subject.get("document_number") or ""
    if normalize_document_number(number) and subject.get("document_type") in (None, "", DocumentType.NONE):
        errors.setdefault("document_number", []).append(str(MESSAGES["document_without_type"]))
    phone = subject.get("phone") or ""
    if not PHONE.fullmatch(phone):
        errors.setdefault("phone", []).append(str(MESSAGES["phone"]))
    return errors


def normalized_subject(subject: Mapping) -> dict:
    """The subject as it is stored: the document number normalized (``v-12.345.678`` → ``V12345678``)."""
    data = dict(subject)
    if data.get("document_number"):
        data["document_number"] = normalize_document_number(data["document_number"])
    return data


def check_subject(subject: Mapping, *, prefix: str = "subject.") -> dict:
    """The normalized subject, or :class:`InvalidInput` naming every incoherent field (``subject.phone``)."""
    errors = subject_errors(subject)
    if errors:
        raise InvalidInput({f"{prefix}{name}": messages for name, messages in errors.items()})
    return normalized_subject(subject)


def _filled(value) -> bool:
    return bool((value or "").strip()) if isinstance(value, str) else bool(value)


def by_names(terms: Mapping) -> bool:
    """A search by name needs both names (a given name alone matches too many people)."""
    return _filled(terms.get("given_name")) and _filled(terms.get("family_name"))


def names_or_document(terms: Mapping) -> bool:
    """A search or a match of a person needs both names, or a document number (every door)."""
    return by_names(terms) or _filled(terms.get("document_number"))


def consent_errors(consent: Mapping) -> dict[str, list[str]]:
    """The rule violations of a consent record, by field; empty when coherent. A given consent names who
    gave it, how and when (not in the future), and at least one data category that may travel."""
    errors: dict[str, list[str]] = {}
    if not consent.get("given"):
        return errors
    for name in ("given_by", "method", "obtained_at"):
        if not consent.get(name):
            errors[name] = [str(MESSAGES["consent_required_field"])]
    if not consent.get("data_categories"):
        errors["data_categories"] = [str(MESSAGES["consent_categories"])]
    obtained_at = consent.get("obtained_at")
    if isinstance(obtained_at, datetime.datetime) and obtained_at > timezone.now() + CONSENT_CLOCK_SKEW:
        errors["obtained_at"] = [str(MESSAGES["consent_future"])]
    return errors


def check_consent(consent: Mapping, *, prefix: str = "consent.") -> None:
    """:class:`InvalidInput` naming every incoherent field of a consent (``consent.obtained_at``)."""
    errors = consent_errors(consent)
    if errors:
        raise InvalidInput({f"{prefix}{name}": messages for name, messages in errors.items()})
