"""Stored records that break today's input rules (contract §7.5), for ``manage.py check_data``.

The rules are the ones every door applies before storing (``referrals.rules`` and ``referrals.cleaning``);
records stored before they existed may break them. A finding names the record by its reference and the
field by its name — never the value, which may be personal data. Erased cases hold no personal data and
are skipped; a record whose data key is unavailable is counted apart (it cannot be judged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import cleaning, crypto, rules
from .choices import SUBJECT_FIELDS
from .models import Case, Consent, Note, Referral, Subject

#: Records read per query (decrypted one by one, in memory only).
BATCH = 500


@dataclass(frozen=True)
class Finding:
    """A stored record breaking a rule: ``kind`` (case, referral, note), its reference, the field."""

    kind: str
    reference: str
    field: str


@dataclass
class Progress:
    kind: str
    checked: int
    total: int
    unreadable: int


def _subject_findings(subject: Subject) -> list[str]:
    values = {name: getattr(subject, name) for name in SUBJECT_FIELDS}
    errors = rules.subject_errors(values)
    # A minor who has turned 18 since was coherent when stored: not junk, and not for this check.
    errors.pop("is_minor", None)
    return [f"subject.{name}" for name in sorted(errors)]


def _texts(**texts) -> list[str]:
    return sorted(rules.text_errors(texts))


def case_findings(case: Case) -> list[Finding]:
    fields = _texts(summary=case.summary)
    try:
        subject = case.subject
    except Subject.DoesNotExist:
        subject = None
    if subject is not None:
        fields += _subject_findings(subject)
    return [Finding("case", case.reference, field) for field in fields]


def referral_findings(referral: Referral) -> list[Finding]:
    fields = _texts(reason=referral.reason, status_reason=referral.status_reason, outcome=referral.outcome)
    try:
        consent = referral.consent
    except Consent.DoesNotExist:
        consent = None
    if consent is not None:
        if cleaning.datetime_error(consent.obtained_at):
            fields.append("consent.obtained_at")
        fields += [
            f"consent.{name}"
            for name in _texts(details=consent.details, withdrawal_reason=consent.withdrawal_reason)
        ]
    return [Finding("referral", referral.reference, field) for field in fields]


def note_findings(note: Note) -> list[Finding]:
    return [Finding("note", f"{note.referral.reference}/{note.pk}", f) for f in _texts(body=note.body)]


def _walk(kind, queryset, judge, progress) -> Iterator[Finding]:
    total = queryset.count()
    unreadable = 0
    for checked, record in enumerate(queryset.order_by("pk").iterator(chunk_size=BATCH), start=1):
        try:
            yield from judge(record)
        except crypto.CryptoError:
            unreadable += 1
        if progress is not None and (checked % BATCH == 0 or checked == total):
            progress(Progress(kind, checked, total, unreadable))
    if progress is not None and total == 0:
        progress(Progress(kind, 0, 0, 0))


def stored_findings(progress: Callable[[Progress], None] | None = None) -> Iterator[Finding]:
    """Every finding in the database, cases first, then referrals, then notes (erased cases skipped)."""
    live = {"case__erased_at__isnull": True}
    cases = Case.objects.filter(erased_at__isnull=True).select_related("subject")
    yield from _walk("cases", cases, case_findings, progress)
    referrals = Referral.objects.filter(**live).select_related("case", "consent")
    yield from _walk("referrals", referrals, referral_findings, progress)
    notes = Note.objects.filter(referral__case__erased_at__isnull=True).select_related("referral__case")
    yield from _walk("notes", notes, note_findings, progress)
