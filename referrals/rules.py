"""Domain rules of a subject (the migrant), written once for every door (contract §6.1).

The API's serializers and the web's forms declare only the shape of their input (types, lengths,
choices); whether a subject is *coherent* — a minor's date of birth, a document number with its type,
the characters of a phone number — is decided here, and the services apply it to what they store. A
door that wants its errors next to its fields calls :func:`subject_errors` first; the services call
:func:`check_subject` whatever the door did, so no door can skip a rule.

The rules of clean values (contract §7.5: characters, ISO codes, plausible dates) are
:mod:`referrals.cleaning`'s; they are applied here to a subject, a consent and a referral's free texts.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import cleaning
from .choices import DocumentType
from .crypto import normalize_document_number
from .errors import InvalidInput

#: Digits, spaces and ``+ - ( )`` only (contract §6.1).
PHONE = re.compile(r"^[0-9 +()\-]*$")
#: The subject's free texts and names (contract §7.5: no control or bidirectional characters).
SUBJECT_TEXTS = ("given_name", "family_name", "document_number", "current_location", "protection_needs")

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
    errors: dict[str, list[str]] = text_errors({name: subject.get(name) for name in SUBJECT_TEXTS})
    for name, error in (
        ("nationality", cleaning.country_error(subject.get("nationality"))),
        ("languages", cleaning.language_error(subject.get("languages"))),
    ):
        if error:
            errors[name] = [error]
    dob = subject.get("date_of_birth")
    if isinstance(dob, datetime.date):
        if dob > today:
            errors.setdefault("date_of_birth", []).append(str(MESSAGES["future_birth"]))
        elif cleaning.date_error(dob, today=today):  # before 1900
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
    """The subject as it is stored: the document number normalized (``v-12.345.678`` → ``V12345678``),
    line breaks as ``\n``."""
    data = normalized_texts(subject)
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
    if isinstance(obtained_at, datetime.datetime):
        error = cleaning.datetime_error(obtained_at)
        if error is None and obtained_at > timezone.now() + CONSENT_CLOCK_SKEW:
            error = str(MESSAGES["consent_future"])
        if error:
            errors["obtained_at"] = [error]
    errors |= text_errors({"details": consent.get("details")})
    return errors


def check_consent(consent: Mapping, *, prefix: str = "consent.") -> None:
    """:class:`InvalidInput` naming every incoherent field of a consent (``consent.obtained_at``)."""
    errors = consent_errors(consent)
    if errors:
        raise InvalidInput({f"{prefix}{name}": messages for name, messages in errors.items()})


def text_errors(texts: Mapping[str, str | None]) -> dict[str, list[str]]:
    """The free texts (or names) among ``texts`` that may not be stored, by name; empty when all are clean."""
    errors = {}
    for name, value in texts.items():
        error = cleaning.text_error(cleaning.normalized_text(value)) if isinstance(value, str) else None
        if error:
            errors[name] = [error]
    return errors


def normalized_texts(texts: Mapping) -> dict:
    """``texts`` with every string's line breaks as ``\n``."""
    return {name: cleaning.normalized_text(v) if isinstance(v, str) else v for name, v in texts.items()}


def check_texts(**texts: str | None) -> dict:
    """The texts as they are stored (line breaks as ``\n``), or :class:`InvalidInput` naming each text that
    holds a control or bidirectional character (``reason``, ``body``)."""
    errors = text_errors(texts)
    if errors:
        raise InvalidInput(errors)
    return normalized_texts(texts)
