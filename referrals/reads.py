"""Read services: every read of personal data, for every door (API, web, exports, later federation links).

A read service fetches with the actor's permissions (the selectors), applies the consent projection,
records the read — always here, always the same event — and returns plain data for the door to render.
A door never decides what a receiver may see, nor writes a read event of its own.

Rules applied here, once:
- *who sees personal data*: the sender's staff with access to the case; the receiver while it holds
  ``view_referral_personal`` and consent is active and not revoked; and, for every kind of caller, only
  with the scope ``referrals:read`` (contract §6.1: a write-only client gets metadata back);
- *what the receiver sees*: only the subject fields of the consented data categories;
- *what is recorded*: ``referral.viewed`` / ``case.viewed`` / ``note.viewed`` when personal data was
  rendered (with the request's id, through the actor), ``referral.metadata_viewed`` when only metadata
  was; ids and codes in the detail, never values. Each read of personal data about a referral also sends
  ``signals.personal_read`` (the federation door reports a copy's reads to the sender's node, §7.4).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.utils import timezone

from accounts.actor import Actor
from accounts.choices import Scope
from audit import recorder
from audit.deferred import record_surviving
from audit.recorder import record

from . import policy, signals
from .choices import CATEGORY_FIELDS, SUBJECT_FIELDS, DataCategory, Side, Status
from .errors import Forbidden, NotVisible
from .models import Case, Note, Referral, ReferralEvent
from .rules import age_on
from .selectors import (
    can_see_personal,
    case_visible_to,
    cases_visible_to,
    find_cases_by_document_number,
    parties,
    receiver_consent_open,
    referral_visible_to,
    referrals_held,
    side_of,
)


def _recording_denials(fetch):
    """A selector's fetch whose refusals are recorded (``access.denied``) — here, in the core, and so as to
    survive a rollback of the caller's transaction (``audit.deferred``)."""

    @functools.wraps(fetch)
    def fetched(*args, **kwargs):
        try:
            return fetch(*args, **kwargs)
        except NotVisible as refused:
            if refused.denial is not None:
                record_surviving(**refused.denial)
                refused.denial = None  # recorded once, whoever catches it next
            raise

    return fetched


#: The case / referral if the actor may see it; else ``NotVisible`` (a 404) after recording the refusal.
#: Every door and service fetches through these, never through the selectors directly.
fetch_case = _recording_denials(case_visible_to)
fetch_referral = _recording_denials(referral_visible_to)


#: How the cases probably of the same person are found (contract §6.2's keyed matching, score ≥ 0.5):
#: the matching app registers its matcher at start-up (``matching.apps``); every door asks
#: ``possible_duplicates``.
_duplicate_finder: Callable[..., list] | None = None


def register_duplicate_finder(finder: Callable[..., list]) -> None:
    """``finder(actor, *, terms, by, exclude)`` → the probable duplicates, best first, the search recorded."""
    global _duplicate_finder
    _duplicate_finder = finder


def possible_duplicates(actor: Actor, *, terms: dict, by: str, exclude=None) -> list:
    """The cases the actor may see that are probably the person described by ``terms`` (subject fields),
    best first, each with its reference, score and reasons — no personal data; the search is recorded
    (``case.searched`` with ``by``, never the terms). The one rule of the API's answer to ``POST /cases/``,
    the web's case form and its case page."""
    if _duplicate_finder is None:
        raise RuntimeError("no duplicate finder registered: the matching app is not installed")
    return _duplicate_finder(actor, terms=terms, by=by, exclude=exclude)


def subject_values(subject, categories: Iterable[str] | None = None) -> dict | None:
    """The subject's fields as plain values; only the keys of ``categories`` when given (a receiver).

    ``None`` once the case was erased (crypto-shredded): there is nothing left to show.
    """
    if subject is None or subject.case.is_erased:
        return None
    if categories is None:
        names = SUBJECT_FIELDS
    else:
        names = [name for category in categories for name in CATEGORY_FIELDS.get(category, ())]
    data = {}
    for name in names:
        value = getattr(subject, name)
        data[name] = value.isoformat() if name == "date_of_birth" and value is not None else value
    return data


def shares_personal(actor: Actor, referral: Referral) -> bool:
    """Whether personal data of ``referral`` may be rendered to ``actor`` (permission, consent, scope)."""
    return actor.has_scope(Scope.REFERRALS_READ) and can_see_personal(actor, referral)


def receiver_categories(referral: Referral) -> list[str]:
    """The data categories that travel to the receiver (the person's consent)."""
    return list(referral.consent.data_categories or [])


def withheld_categories(referral: Referral) -> list[str]:
    """The data categories that stay with the sender."""
    shared = set(receiver_categories(referral))
    return [category.value for category in DataCategory if category.value not in shared]


def travelling_categories(referral: Referral) -> list[str]:
    """The data categories the receiving institution sees of the person — now, or once the draft is sent:
    the consented ones while consent is open (given, not withdrawn, the receiver's access not revoked),
    none otherwise. The one answer behind the receiver's view, the preview and the sender's marks."""
    return receiver_categories(referral) if receiver_consent_open(referral) else []


def travelling_fields(referral: Referral) -> frozenset[str]:
    """The subject fields of :func:`travelling_categories` (the sender's "shared / stays with us" marks)."""
    return frozenset(name for c in travelling_categories(referral) for name in CATEGORY_FIELDS.get(c, ()))


def projected_subject(actor: Actor, referral: Referral) -> dict | None:
    """The subject as ``actor`` may see it: whole for the sender, the consented categories for a receiver."""
    categories = None if side_of(actor, referral) == Side.SENDER else travelling_categories(referral)
    return subject_values(referral.case.subject, categories)


def _free_texts(referral: Referral) -> dict:
    """The referral's free texts, for a reader who may see personal data."""
    return {"reason": referral.reason, "status_reason": referral.status_reason, "outcome": referral.outcome}


@dataclass
class ReferralView:
    """A referral as one actor may see it; ``subject``, ``reason``… are ``None`` without personal data.

    ``travels``: for the sender who sees the person, the subject fields the receiver sees (or will see
    once sent) — empty once consent or the receiver's access ended; ``None`` for a receiver.
    """

    referral: Referral
    side: str
    personal: bool
    subject: dict | None = None
    events: list[ReferralEvent] | None = None
    notes: list[Note] | None = None
    texts: dict = field(default_factory=dict)
    travels: frozenset[str] | None = None

    @property
    def is_sender(self) -> bool:
        return self.side == Side.SENDER


def _record_referral_read(actor: Actor, referral: Referral, *, personal: bool, detail: dict) -> None:
    record(
        actor=actor,
        action="referral.viewed" if personal else "referral.metadata_viewed",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"side": side_of(actor, referral), **detail},
    )
    if personal:
        signals.personal_read.send(
            Referral, referral=referral, actor=actor, action="referral.viewed", detail=detail
        )


def _record_notes_read(actor: Actor, referral: Referral, count: int, detail: dict) -> None:
    record(
        actor=actor,
        action="note.viewed",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"count": count, **detail},
    )
    signals.personal_read.send(
        Referral, referral=referral, actor=actor, action="note.viewed", detail={"count": count, **detail}
    )


def timeline(actor: Actor, referral: Referral) -> QuerySet[ReferralEvent]:
    """The referral's events, oldest first; the receiver sees them from ``send`` on."""
    events = ReferralEvent.objects.filter(referral=referral).select_related("actor_institution", "actor_user")
    if side_of(actor, referral) == Side.RECEIVER:
        events = events.exclude(action="create")
    return events.order_by("at", "sequence")


def referral_read(
    *,
    actor: Actor,
    referral_id=None,
    referral: Referral | None = None,
    after_write: bool = False,
    with_timeline: bool = False,
    with_notes: bool = False,
    detail: dict | None = None,
) -> ReferralView:
    """A referral as the actor may see it, its read recorded — the one read of a referral for every door.

    By ``referral_id``: fetched with the actor's permissions (``NotVisible`` — a 404 — otherwise). Or an
    already-permitted ``referral`` (a list's row, a write's result). ``after_write=True``: the referral a
    write service just returned, as the write's response shows it — personal data only if the write left
    the actor's side its access (a rejection or a withdrawal revokes the receiver's: permissions are looked
    up afresh), and no metadata-only event (a write response without personal data is no read of anything).
    """
    if referral is None:
        referral = fetch_referral(actor, referral_id)
    if after_write:
        for remembered in ("_held_for", "_personal_for"):
            referral.__dict__.pop(remembered, None)
    detail = detail or {}
    personal = shares_personal(actor, referral)
    view = ReferralView(referral=referral, side=side_of(actor, referral), personal=personal)
    if personal:
        view.subject = projected_subject(actor, referral)
        view.texts = _free_texts(referral)
        if view.is_sender:
            view.travels = travelling_fields(referral)
    if with_timeline:
        view.events = list(timeline(actor, referral))
    if with_notes and personal:
        notes = list(
            Note.objects.filter(referral=referral)
            .select_related("author_institution", "author_user")
            .order_by("at", "id")
        )
        for note in notes:
            note.referral = referral  # one unwrapped data key for the whole page
        view.notes = notes
    if personal or not after_write:
        _record_referral_read(actor, referral, personal=personal, detail=detail)
    if view.notes:
        _record_notes_read(actor, referral, len(view.notes), detail)
    return view


@dataclass
class ReferralPreview:
    """A draft as the receiving institution will see it once sent, for its sender to check before sending.

    ``subject`` / ``reason``: exactly the receiver's projection (``None``: nothing reaches it);
    ``withheld``: the data categories (and ``withheld_fields`` their subject fields) that stay behind.
    """

    referral: Referral
    personal: bool
    subject: dict | None
    reason: str | None
    categories: list[str]
    withheld: list[str]
    withheld_fields: list[str]


def referral_preview_read(*, actor: Actor, referral_id) -> ReferralPreview:
    """The preview of a draft by its sender (``Forbidden`` for anything else): the receiver's projection
    of the person and the free texts — consented categories only, nothing while consent is not open —
    computed as the receiver's own read computes it; recorded as a read of the referral."""
    referral = fetch_referral(actor, referral_id)
    if side_of(actor, referral) != Side.SENDER or referral.status != Status.DRAFT:
        raise Forbidden("Only the sending institution previews a draft.")
    view = referral_read(actor=actor, referral=referral, detail={"page": "preview"})
    categories = travelling_categories(referral) if view.personal else []
    subject = subject_values(referral.case.subject, categories) if categories else None
    withheld = [category.value for category in DataCategory if category.value not in categories]
    return ReferralPreview(
        referral=referral,
        personal=view.personal,
        subject=subject,
        reason=_free_texts(referral)["reason"] if categories else None,
        categories=categories,
        withheld=withheld,
        withheld_fields=[name for category in withheld for name in CATEGORY_FIELDS[category]],
    )


def notes_read(
    *, actor: Actor, referral_id, paginate: Callable[[QuerySet[Note]], list[Note]] | None = None
) -> tuple[Referral, list[Note]]:
    """The notes of a referral while the actor's side has access to its personal data; recorded.

    ``paginate`` lets a door cut a page out of the queryset (the API's cursor pagination); without it,
    every note.
    """
    referral = fetch_referral(actor, referral_id)
    if not shares_personal(actor, referral):
        raise Forbidden("Your institution no longer has access to this referral's notes.")
    notes = Note.objects.filter(referral=referral).select_related("author_institution").order_by("at", "id")
    page = list(paginate(notes) if paginate is not None else notes)
    for note in page:
        note.referral = referral
    _record_notes_read(actor, referral, len(page), {})
    return referral, page


def note_shown_after_write(*, actor: Actor, referral_id, note_id, detail: dict | None = None) -> Note | None:
    """A just-written (or replayed) note for the write's response: its body only to ``referrals:read``
    callers, recorded as ``note.viewed``; ``None`` when the note is not the referral's."""
    referral = fetch_referral(actor, referral_id)
    note = Note.objects.select_related("author_institution").filter(pk=note_id, referral=referral).first()
    if note is None:
        return None
    note.referral = referral
    if shares_personal(actor, referral):
        _record_notes_read(actor, referral, 1, detail or {})
        note.shown_body = note.body
    else:
        note.shown_body = None
    return note


@dataclass
class CaseView:
    """A case as the actor may see it; ``subject``/``summary`` are ``None`` without personal data."""

    case: Case
    personal: bool
    subject: dict | None = None
    summary: str | None = None


def case_read(
    *, actor: Actor, case_id=None, case: Case | None = None, detail: dict | None = None
) -> CaseView:
    """A case as the actor may see it, ``case.viewed`` recorded when personal data is shown — the one read
    of a case: by ``case_id`` (a case of the actor's institution it may see, else ``NotVisible``), or an
    already-permitted ``case``."""
    if case is None:
        case = fetch_case(actor, case_id)
    personal = actor.has_scope(Scope.REFERRALS_READ)
    view = CaseView(case=case, personal=personal)
    if personal:
        view.subject = None if case.is_erased else subject_values(case.subject)
        view.summary = case.summary
        record(
            actor=actor,
            action="case.viewed",
            object_type="case",
            object_id=case.pk,
            case_id=case.pk,
            institutions=[case.institution],
            detail=detail or {},
        )
    return view


def case_names_read(*, actor: Actor, case_ids, detail: dict | None = None) -> dict:
    """The person's name on each case among ``case_ids`` that the actor may see (erased ones have none):
    showing a name is a read of the case, recorded as ``case.viewed`` per case shown (one append)."""
    cases = (
        cases_visible_to(actor)
        .filter(pk__in=list(case_ids), erased_at__isnull=True)
        .select_related("institution", "subject")
    )
    names = {}
    with recorder.batch():
        for case in cases:
            view = case_read(actor=actor, case=case, detail=detail)
            if view.subject:
                names[case.pk] = " ".join(
                    p for p in (view.subject["given_name"], view.subject["family_name"]) if p
                )
    return names


def cases_by_document_number(*, actor: Actor, document_number: str) -> list[Case]:
    """Exact search through the blind index (decrypt-and-compare against collisions), recorded as
    ``case.searched`` with the number of matches — never the number searched for."""
    matches = find_cases_by_document_number(actor, document_number)
    record(
        actor=actor,
        action="case.searched",
        object_type="case",
        institutions=[actor.institution],
        detail={"by": "document_number", "matches": len(matches)},
    )
    return matches


# --- lists with people's names (issue 12) ------------------------------------------------------------


@dataclass
class PersonLine:
    """What a list row shows of a person: name, nationality code and age (the identity category)."""

    name: str
    nationality: str | None
    age: int | None
    is_minor: bool | None


@dataclass
class ReferralRow:
    """One referral of a list; ``person`` is ``None`` where the reader may not see the person."""

    referral: Referral
    person: PersonLine | None = None


@dataclass
class CaseRow:
    case: Case
    person: PersonLine | None = None


def _person_line(subject, today) -> PersonLine | None:
    if subject is None or subject.case.is_erased:
        return None
    name = " ".join(part for part in (subject.given_name, subject.family_name) if part)
    return PersonLine(
        name=name,
        nationality=subject.nationality or None,
        age=None if subject.date_of_birth is None else age_on(subject.date_of_birth, today),
        is_minor=subject.is_minor,
    )


def _receiver_personal_ids(actor: Actor, referrals: list[Referral]) -> set:
    """Ids of the received referrals on which the actor holds ``view_referral_personal`` (one query)."""
    return referrals_held(actor, [r.pk for r in referrals], "view_referral_personal")


def _row_shows_person(actor: Actor, referral: Referral, receiver_ids: set) -> bool:
    """The sender's staff see the person; a receiver only with the permission, active consent and the
    identity category consented (the one holding name, nationality and date of birth)."""
    if not actor.has_scope(Scope.REFERRALS_READ):
        return False
    if side_of(actor, referral) == Side.SENDER:
        return True
    return referral.pk in receiver_ids and DataCategory.IDENTITY.value in travelling_categories(referral)


def referral_rows_read(actor: Actor, referrals: Iterable[Referral], *, list_name: str) -> list[ReferralRow]:
    """A page of referrals (already scoped to the actor) with the person's name, nationality and age
    where the actor may see them; ONE ``referral.list_viewed`` event names the referrals whose person
    was shown (ids only, never the values). Load the referrals with ``select_related("case__subject",
    "consent")`` so that the page costs a fixed number of queries."""
    referrals = list(referrals)
    today = timezone.localdate()
    receiver_ids = _receiver_personal_ids(actor, [r for r in referrals if side_of(actor, r) == Side.RECEIVER])
    rows, shown, concerned = [], [], {actor.institution.pk: actor.institution}
    for referral in referrals:
        row = ReferralRow(referral=referral)
        if _row_shows_person(actor, referral, receiver_ids):
            row.person = _person_line(getattr(referral.case, "subject", None), today)
            if row.person is not None:
                shown.append(str(referral.pk))
                signals.personal_read.send(
                    Referral,
                    referral=referral,
                    actor=actor,
                    action="referral.list_viewed",
                    detail={"list": list_name},
                )
                for institution in parties(referral):
                    concerned[institution.pk] = institution
        rows.append(row)
    if shown:
        record(
            actor=actor,
            action="referral.list_viewed",
            object_type="referral",
            institutions=list(concerned.values()),
            detail={"list": list_name, "referral_ids": shown, "count": len(referrals)},
        )
    return rows


def case_rows_read(actor: Actor, cases: Iterable[Case], *, list_name: str) -> list[CaseRow]:
    """A page of the actor's cases (already scoped) with the person's name, nationality and age; ONE
    ``case.list_viewed`` event with the ids of the cases whose person was shown. Load the cases with
    ``select_related("subject")``."""
    cases = list(cases)
    today = timezone.localdate()
    personal = actor.has_scope(Scope.REFERRALS_READ)
    rows, shown = [], []
    for case in cases:
        row = CaseRow(case=case)
        if personal and not case.is_erased:
            subject = getattr(case, "subject", None)
            if subject is not None:
                subject.case = case
                row.person = _person_line(subject, today)
                shown.append(str(case.pk))
        rows.append(row)
    if shown:
        record(
            actor=actor,
            action="case.list_viewed",
            object_type="case",
            institutions=[actor.institution],
            detail={"list": list_name, "case_ids": shown, "count": len(cases)},
        )
    return rows


@dataclass
class ReferralSheet:
    """What a printed referral sheet carries: the consented data only, and who to contact."""

    referral: Referral
    subject: dict | None
    categories: list[str]
    withheld: list[str]
    reason: str | None
    #: When consent was obtained, as the sheet can show it: ``None`` for a stored value no calendar of the
    #: reader's zone can hold (junk from before the input rules, e.g. year 1 — ``manage.py check_data``
    #: lists it), so the sheet still prints instead of failing.
    consent_obtained_at: datetime.datetime | None = None


def _showable(moment: datetime.datetime | None) -> datetime.datetime | None:
    """``moment`` if it converts to the local time zone (templates show local times), else ``None``."""
    if moment is None:
        return None
    try:
        timezone.localtime(moment)
    except (OverflowError, ValueError):
        return None
    return moment


def referral_sheet_read(*, actor: Actor, referral_id) -> ReferralSheet:
    """The printable sheet of a referral for an institution not on the system: exactly the data the
    person consented to share (the receiver's projection, even when the sender prints it), the reason,
    the reference and the sender's contact. Only while personal data may be shown (``Forbidden``
    otherwise) and with active consent, by the sending institution only (``WrongSide`` for the receiver:
    it never could print), never once voided (the rule: ``policy.require_print``); recorded as
    ``referral.printed``."""
    referral = fetch_referral(actor, referral_id)
    policy.require_print(actor, referral, shares_personal=shares_personal(actor, referral))
    categories = receiver_categories(referral)
    sheet = ReferralSheet(
        referral=referral,
        subject=subject_values(referral.case.subject, categories),
        categories=categories,
        withheld=withheld_categories(referral),
        reason=referral.reason,
        consent_obtained_at=_showable(referral.consent.obtained_at),
    )
    record(
        actor=actor,
        action="referral.printed",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"side": side_of(actor, referral), "categories": categories},
    )
    signals.personal_read.send(Referral, referral=referral, actor=actor, action="referral.printed", detail={})
    return sheet
