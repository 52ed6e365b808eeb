"""Referrals between institutions on two nodes (contract §7.4): what travels, and the receiver's copy.

The **sender's node is a referral's authority**: its lifecycle is decided there. The receiver's node holds a
**copy** (same ``id`` and ``reference``; its ``from_institution`` is a remote institution, its case holds only
the consented subject fields) and serves it to the receiving institution exactly as a local referral.

This module is the core's side of that exchange, in plain data:

- :func:`projection` — what the receiver's node gets at ``send``: the consented projection only (the
  subject fields of the consented categories, services, urgency, reason, the consent record, reference, ids,
  deadlines) and the referral's state; data of other categories never leaves, not even encrypted;
- :func:`state` — the shared state (status, version, deadlines, events, notes) the authority pushes after
  every change, and answers a forwarded action with;
- :func:`apply_state` — the copy brought to the authority's state (idempotent: ids and versions);
- :func:`forward` — a receiver's action sent to the authority through the forwarder the federation door
  registers (:func:`register_forwarder`): the core imports no door.

The node-facing services that use them are in ``referrals.federated``.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable

from django.contrib.auth.models import Group
from django.db.models import CharField, IntegerField, Value
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.actor import Actor
from accounts.choices import Scope
from accounts.models import Institution

from . import permissions
from .choices import CATEGORY_FIELDS, Status
from .errors import InvalidInput, PeerUnavailable
from .models import Note, Referral, ReferralEvent
from .reads import subject_values, travelling_categories

#: ``forwarder(referral, message_type, payload) -> dict``: posts the message to the node of the referral's
#: sending institution and returns its answer's payload; raises ``ProblemError`` (the authority's own
#: problem, 409/412/…) or ``ConnectionError`` (unreachable, or no verified answer). Set by the federation app.
_forwarder: list[Callable[[Referral, str, dict], dict]] = []


def register_forwarder(forwarder: Callable[[Referral, str, dict], dict]) -> None:
    _forwarder[:] = [forwarder]


def category_fields(category: str) -> tuple[str, ...]:
    """The subject fields of a data category (none for an unknown one)."""
    return tuple(CATEGORY_FIELDS.get(category, ()))


def authority_is_remote(referral: Referral) -> bool:
    """This node holds a copy: the referral's sending institution is hosted by a peer."""
    return bool(referral.from_institution.node)


def receiver_is_remote(referral: Referral) -> bool:
    """This node is the authority of a referral received by an institution a peer hosts."""
    return bool(referral.to_institution.node)


def forward(referral: Referral, message_type: str, payload: dict) -> dict:
    """Send a receiver's act on a copy to the authority and return its answer (a state: :func:`state`).
    ``PeerUnavailable`` (503) when it cannot be reached; the authority's problem (409, 412, …) as given."""
    if not _forwarder:
        raise PeerUnavailable()
    try:
        return _forwarder[0](referral, message_type, payload)
    except ConnectionError:
        raise PeerUnavailable() from None


def who(actor: Actor) -> dict:
    """The acting user or client as the other node records it: type, id, label, request id (staff
    identifiers, never data about the person)."""
    return {
        "type": actor.kind,
        "id": str(actor.id),
        "label": actor.label[:120],
        "request_id": actor.request_id,
    }


def node_actor(*, institution: Institution, node: str, acted_by: dict | None = None) -> Actor:
    """A remote institution acting here through its node (``node``: the peer's URL), for the user or client
    named in ``acted_by`` (:func:`who` at the other node). It holds what the institution's groups hold here
    (the grants of a referral sent to it): its node already applied its own need-to-know."""
    acted_by = acted_by if isinstance(acted_by, dict) else {}

    def text(name: str, limit: int) -> str:
        value = acted_by.get(name)
        return value[:limit] if isinstance(value, str) and value.isprintable() else ""

    kind = text("type", 16)
    group_ids = tuple(
        Group.objects.filter(name__startswith=f"{institution.code}:").values_list("id", flat=True)
    )
    return Actor(
        institution=institution,
        scopes=frozenset({Scope.REFERRALS_READ, Scope.REFERRALS_WRITE}),
        group_ids=group_ids,
        request_id=text("request_id", 64),
        node=node,
        remote_kind=kind if kind in ("user", "api_client", "system") else "system",
        remote_id=text("id", 64),
        remote_label=text("label", 120),
    )


# --- what travels --------------------------------------------------------------------------------------


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _moment(value, field: str) -> datetime.datetime | None:
    if value is None:
        return None
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None or timezone.is_naive(moment):
        raise InvalidInput({field: ["A date-time with its offset."]})
    return moment


def state(referral: Referral) -> dict:
    """The state both nodes share: status and its texts, version, deadlines, every event and note (their ids
    are the authority's). Free texts are personal: the federation door seals what carries them.

    Remembered on the instance for its version: the state queued for the peer and the one answering a
    forwarded action are built once."""
    remembered = referral.__dict__.get("_remote_state")
    if remembered is not None and remembered[0] == (referral.version, referral.updated_at):
        return remembered[1]
    # The draft's own steps stay with the sender: the receiver's timeline starts at ``send``, as on one node.
    # The events, and which notes there are, in one query (``UNION ALL``); the notes' bodies (sealed with the
    # case's key: model instances) only when there are notes — most referrals have none.
    text, number = CharField(), IntegerField()
    rows = sorted(
        referral.events.exclude(to_status=Status.DRAFT)
        .order_by()
        .values_list(
            "pk", "at", "actor_institution__code", "action", "from_status", "to_status", "sequence",
            Value("event", output_field=text),
        )
        .union(
            referral.notes.order_by().values_list(
                "pk", "at", "author_institution__code", Value("", output_field=text),
                Value("", output_field=text), Value("", output_field=text), Value(0, output_field=number),
                Value("note", output_field=text),
            ),
            all=True,
        ),
        key=lambda row: (row[1], row[6]),
    )  # fmt: skip
    events = [row[:7] for row in rows if row[7] == "event"]
    has_notes = any(row[7] == "note" for row in rows)
    notes = referral.notes.select_related("author_institution").order_by("at") if has_notes else ()
    data = {
        "version": referral.version,
        "status": referral.status,
        "status_reason": referral.status_reason or "",
        "outcome": referral.outcome or "",
        "sent_at": _iso(referral.sent_at),
        "response_due_at": _iso(referral.response_due_at),
        "answered_at": _iso(referral.answered_at),
        "receiver_access_revoked_at": _iso(referral.receiver_access_revoked_at),
        "updated_at": _iso(referral.updated_at),
        "events": [
            {
                "id": str(pk),
                "at": _iso(at),
                "institution": institution,
                "action": action,
                "from": from_status,
                "to": to_status,
                "sequence": sequence,
            }
            for pk, at, institution, action, from_status, to_status, sequence in events
        ],
        "notes": [
            {
                "id": str(note.pk),
                "at": _iso(note.at),
                "institution": note.author_institution.code,
                "body": note.body,
            }
            for note in notes
        ],
    }
    referral.__dict__["_remote_state"] = ((referral.version, referral.updated_at), data)
    return data


def projection(referral: Referral) -> dict:
    """What the receiver's node receives at ``send`` (contract §7.4): the consented projection and the
    state. The subject carries only the fields of the consented categories (``travelling_categories``,
    the same rule as the receiver's view on one node)."""
    consent = referral.consent
    subject = subject_values(referral.case.subject, travelling_categories(referral)) or {}
    return {
        "referral": {
            "id": str(referral.pk),
            "reference": referral.reference,
            "from": referral.from_institution.code,
            "to": referral.to_institution.code,
            "to_office": referral.to_office.code if referral.to_office_id else None,
            "province": referral.province,
            "services": list(referral.services),
            "urgency": referral.urgency,
            "reason": referral.reason or "",
            "created_at": _iso(referral.created_at),
        },
        "case": {"id": str(referral.case_id), "reference": referral.case.reference},
        "consent": {
            "given": consent.given,
            "given_by": consent.given_by,
            "method": consent.method,
            "obtained_at": _iso(consent.obtained_at),
            "data_categories": list(consent.data_categories),
            "details": consent.details or "",
            "recorded_at": _iso(consent.recorded_at),
        },
        "subject": subject,
        "state": state(referral),
    }


# --- the copy --------------------------------------------------------------------------------------------

_STATE_TIMES = ("sent_at", "response_due_at", "answered_at", "receiver_access_revoked_at")


def _institution(code, field: str) -> Institution:
    institution = Institution.objects.filter(code=code).first() if isinstance(code, str) else None
    if institution is None:
        raise InvalidInput({field: ["Unknown institution."]})
    return institution


def _text(data: dict, name: str, field: str, limit: int = 20000) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput({field: ["Text expected."]})
    return value


def state_fields(data: dict, *, erased: bool = False) -> dict:
    """The referral's fields in the authority's state ``data`` (status, texts, deadlines, version), checked:
    ``InvalidInput`` naming the first field that is not what a state holds. ``erased``: the copy's personal
    data is gone, so its free texts are not taken."""
    if not isinstance(data, dict):
        raise InvalidInput({"state": ["An object expected."]})
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInput({"state.version": ["A positive integer."]})
    status = data.get("status")
    if status not in Status.values:
        raise InvalidInput({"state.status": ["Unknown status."]})
    fields = {"version": version, "status": status}
    if not erased:
        fields["status_reason"] = _text(data, "status_reason", "state.status_reason")
        fields["outcome"] = _text(data, "outcome", "state.outcome")
    for name in _STATE_TIMES:
        fields[name] = _moment(data.get(name), f"state.{name}")
    fields["updated_at"] = _moment(data.get("updated_at"), "state.updated_at") or timezone.now()
    return fields


def apply_state(referral: Referral, data: dict, *, actor: Actor, new: bool = False) -> tuple[str, str] | None:
    """Bring the (locked) copy to the authority's state ``data``: events and notes it lacks are added with
    the authority's ids; the status, texts, deadlines and version are taken when ``data`` is newer; the
    receiver's grants are revoked when the authority revoked its access. Returns ``(from, to)`` when the
    status changed, else ``None``. Idempotent: an older or repeated state changes nothing. ``new``: the copy
    was made in this transaction (it has no events or notes yet)."""
    consent = getattr(referral, "consent", None)
    # A copy whose personal data is gone (its case erased, or its consent withdrawn and the copy shredded,
    # ``data_rights.copy_shred``) takes no free text any more.
    gone = referral.case.is_erased or (consent is not None and consent.withdrawn_at is not None)
    fields = state_fields(data, erased=gone)
    codes = {
        referral.from_institution.code: referral.from_institution,
        referral.to_institution.code: referral.to_institution,
    }
    events, notes = {}, {}
    for item in data.get("events") or []:
        if not isinstance(item, dict) or item.get("institution") not in codes:
            raise InvalidInput({"state.events": ["Events of the referral's two institutions."]})
        event_id = _uuid(item.get("id"), "state.events")
        if event_id in events:
            continue
        events[event_id] = ReferralEvent(
            id=event_id,
            referral=referral,
            at=_moment(item.get("at"), "state.events") or timezone.now(),
            actor_institution=codes[item["institution"]],
            action=_text(item, "action", "state.events", 32),
            from_status=_text(item, "from", "state.events", 20),
            to_status=_text(item, "to", "state.events", 20),
            sequence=item.get("sequence") if isinstance(item.get("sequence"), int) else 0,
        )
    for item in data.get("notes") or []:
        if not isinstance(item, dict) or item.get("institution") not in codes:
            raise InvalidInput({"state.notes": ["Notes of the referral's two institutions."]})
        note_id = _uuid(item.get("id"), "state.notes")
        if note_id in notes or gone:
            continue
        at = _moment(item.get("at"), "state.notes") or timezone.now()
        body = _text(item, "body", "state.notes")
        notes[note_id] = Note(
            id=note_id, referral=referral, author_institution=codes[item["institution"]], body=body, at=at
        )
        notes[note_id].created_at = at
    if not new and (events or notes):
        # the events and notes of the state this copy has already: one query for both kinds
        known = set(
            ReferralEvent.objects.filter(referral=referral, pk__in=list(events))
            .order_by()
            .values_list("pk", Value("event"))
            .union(
                Note.objects.filter(referral=referral, pk__in=list(notes))
                .order_by()
                .values_list("pk", Value("note")),
                all=True,
            )
        )
        events = {pk: event for pk, event in events.items() if (pk, "event") not in known}
        notes = {pk: note for pk, note in notes.items() if (pk, "note") not in known}
    if events:
        ReferralEvent.objects.bulk_create(list(events.values()))
    if notes:
        Note.objects.bulk_create(list(notes.values()))
    if fields["version"] <= referral.version:
        return None
    previous = referral.status
    revoked_before = referral.receiver_access_revoked_at is not None
    # Only what the authority changed is written (an unchanged text is not encrypted and written again; no
    # text and an empty one are the same).
    changed = [name for name, value in fields.items() if getattr(referral, name) != value]
    changed = [name for name in changed if getattr(referral, name) is not None or fields[name] != ""]
    for name in changed:
        setattr(referral, name, fields[name])
    referral.save(update_fields=changed)
    if referral.receiver_access_revoked_at is not None and not revoked_before:
        permissions.revoke_receiver(referral=referral, actor=actor)
    return (previous, referral.status) if previous != referral.status else None


def _uuid(value, field: str):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput({field: ["A UUID."]}) from None
