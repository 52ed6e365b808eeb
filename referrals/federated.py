"""The core's services for a peer node (contract §7.4), called by the federation door with the peer's URL.

Each is one unit of work that checks the peer's right to what it asks (a referral's copy is changed only
by its authority's node; the authority acts only for the node hosting the receiving institution), writes
through the same rules as every door, and audits. What travels is built in ``referrals.remote``.
"""

from __future__ import annotations

import datetime

from django.db.models import Q
from django.utils import timezone

from accounts.choices import Province
from accounts.directory import office_of
from accounts.models import Institution
from audit.recorder import record
from notifications.outbox import emit
from notifications.services import notify_in_app

from . import permissions, remote, routing, rules, signals
from .choices import SUBJECT_FIELDS, Status, Urgency
from .errors import InvalidInput, NotVisible
from .models import Case, Consent, Note, Referral, Subject
from .selectors import parties
from .services import _set_blind_indexes, note_create, referral_transition, transitioned, unit_of_work

_RECEIVABLE = frozenset(Status.values) - {Status.DRAFT}


def _copy_for_node(node: str, referral_id, *, lock: bool = True) -> Referral:
    """The copy of a referral whose authority is ``node`` (else 404: a peer touches only its own)."""
    query = Referral.objects.select_related("from_institution", "to_institution", "case", "consent")
    if lock:
        query = query.select_for_update(of=("self",))
    referral = query.filter(pk=referral_id, from_institution__node=node).first()
    if referral is None:
        raise NotVisible()
    return referral


def _authority_for_node(node: str, referral_id, *, lock: bool = False) -> Referral:
    """A referral of this node sent to an institution ``node`` hosts (else 404)."""
    query = Referral.objects.select_related("from_institution", "to_institution")
    if lock:
        query = query.select_for_update(of=("self",))
    referral = (
        query.filter(pk=referral_id, from_institution__node="", to_institution__node=node)
        .exclude(status=Status.DRAFT)
        .first()
    )
    if referral is None:
        raise NotVisible()
    return referral


def _section(data: dict, name: str) -> dict:
    value = data.get(name)
    if not isinstance(value, dict):
        raise InvalidInput({name: ["An object expected."]})
    return value


@unit_of_work()
def copy_receive(*, node: str, data: dict) -> tuple[Referral, bool]:
    """A referral delivered by the node of its sending institution: this node's copy, created once
    (``(copy, True)``), or brought to the delivered state when it exists (``(copy, False)``).

    The receiving institution must be hosted here and the sending one by ``node``; the subject keeps only
    the fields a consented category names (anything else is refused: nothing beyond consent is stored).
    Routing by province happens here (contract §7.2/§7.4), grants go to the receiving office or intake,
    the timeline and notes are the authority's, and the receiving institution's systems are told
    (``referral.requested``) as on one node."""
    info, case_info = _section(data, "referral"), _section(data, "case")
    consent_info, subject_info = _section(data, "consent"), data.get("subject") or {}
    codes = (info.get("from"), info.get("to"))
    if not all(isinstance(code, str) for code in codes):
        raise InvalidInput({"referral.from": ["Institution codes expected."]})
    institutions = {i.code: i for i in Institution.objects.filter(code__in=codes)}
    sender, receiver = institutions.get(codes[0]), institutions.get(codes[1])
    if sender is None or receiver is None or sender.node != node or receiver.node:
        raise InvalidInput({"referral.from": ["Not an institution of the sending node to one of this node."]})
    referral_id = remote._uuid(info.get("id"), "referral.id")
    reference = info.get("reference")
    case_reference = case_info.get("reference")
    for name, value in (("referral.reference", reference), ("case.reference", case_reference)):
        if not isinstance(value, str) or not 1 <= len(value) <= 32:
            raise InvalidInput({name: ["A reference."]})
    actor = remote.node_actor(institution=sender, node=node)
    clashes = list(
        Referral.objects.filter(Q(pk=referral_id) | Q(reference=reference)).values_list("pk", flat=True)
    )
    if referral_id in clashes:
        copy = _copy_for_node(node, referral_id)
        copy_state(node=node, referral_id=copy.pk, data=_section(data, "state"))
        return copy, False
    if clashes:
        raise InvalidInput({"referral.reference": ["Already used here by another referral."]})
    categories = consent_info.get("data_categories")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise InvalidInput({"consent.data_categories": ["A list of categories."]})
    if not isinstance(subject_info, dict):
        raise InvalidInput({"subject": ["An object expected."]})
    allowed = {name for category in categories for name in remote.category_fields(category)}
    extra = set(subject_info) - allowed
    if extra or not set(subject_info) <= set(SUBJECT_FIELDS):
        raise InvalidInput({f"subject.{name}": ["Not consented."] for name in sorted(extra)})
    subject_info = dict(subject_info)
    if isinstance(subject_info.get("date_of_birth"), str):
        try:
            subject_info["date_of_birth"] = datetime.date.fromisoformat(subject_info["date_of_birth"])
        except ValueError:
            raise InvalidInput({"subject.date_of_birth": ["A date (YYYY-MM-DD)."]}) from None
    subject = rules.check_subject(subject_info)
    state = _section(data, "state")
    fields = remote.state_fields(state)
    if fields["status"] not in _RECEIVABLE:
        raise InvalidInput({"state.status": ["A sent referral's status."]})
    services = info.get("services")
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise InvalidInput({"referral.services": ["A list of services."]})
    urgency = info.get("urgency")
    if urgency not in Urgency.values:
        raise InvalidInput({"referral.urgency": ["Unknown urgency."]})
    province = info.get("province") or ""
    if province not in Province.values and province != "":
        raise InvalidInput({"referral.province": ["Unknown province."]})
    now = timezone.now()
    case_id = remote._uuid(case_info.get("id"), "case.id")
    cases = {c.pk: c for c in Case.objects.filter(Q(pk=case_id) | Q(reference=case_reference))}
    case = cases.get(case_id)
    if case is not None and case.institution_id != sender.pk or case is None and cases:
        raise InvalidInput({"case.reference": ["Already used here by another case."]})
    if case is None:
        case = Case(id=case_id, institution=sender, reference=case_reference, created_at=now, updated_at=now)
        case.save(force_insert=True)
        person = Subject(case=case, **subject)
        _set_blind_indexes(person)
        person.save(force_insert=True)
        signals.subject_saved.send(sender=Subject, case=case, subject=person, new=True)
    to_office = None
    if isinstance(info.get("to_office"), str):
        to_office = office_of(receiver.pk, info["to_office"])
    copy = Referral(
        id=referral_id,
        reference=reference,
        case=case,
        from_institution=sender,
        to_institution=receiver,
        to_office=to_office,
        province=province,
        services=list(dict.fromkeys(services)),
        urgency=urgency,
        reason=remote._text(info, "reason", "referral.reason"),
        created_at=remote._moment(info.get("created_at"), "referral.created_at") or now,
        **fields,
    )
    if copy.to_office is None:
        copy.to_office = routing.office_for(copy)
    copy.save(force_insert=True)
    Consent.objects.create(
        referral=copy,
        recipient=receiver,
        given=bool(consent_info.get("given")),
        given_by=remote._text(consent_info, "given_by", "consent.given_by", 16),
        method=remote._text(consent_info, "method", "consent.method", 16),
        obtained_at=remote._moment(consent_info.get("obtained_at"), "consent.obtained_at"),
        data_categories=sorted(set(categories)),
        details=remote._text(consent_info, "details", "consent.details"),
    )
    remote.apply_state(copy, state, actor=actor, new=True)  # the authority's events and notes
    permissions.grant_receiver(referral=copy, actor=actor)
    record(
        actor=actor,
        action="referral.delivered",
        object_type="referral",
        object_id=copy.pk,
        case_id=case.pk,
        institutions=parties(copy),
        detail={
            "node": node,
            "reference": copy.reference,
            "office": copy.to_office.code if copy.to_office_id else "",
        },
    )
    emit(
        event_type="referral.requested",
        referral=copy,
        payload={
            "action": "send",
            "from_status": Status.DRAFT,
            "to_status": copy.status,
            "actor_institution": sender.code,
        },
    )
    return copy, True


@unit_of_work()
def copy_state(*, node: str, referral_id, data: dict) -> Referral:
    """The authority's new state for this node's copy (``referrals.remote.apply_state``); a status change
    is audited and told to the receiving institution's systems as on one node."""
    copy = _copy_for_node(node, referral_id)
    actor = remote.node_actor(institution=copy.from_institution, node=node)
    changed = remote.apply_state(copy, data, actor=actor)
    if changed is not None:
        # the authority's step that led there (its last event to the new status), as its timeline says
        steps = [e for e in data.get("events") or [] if isinstance(e, dict) and e.get("to") == changed[1]]
        action = steps[-1].get("action") if steps and isinstance(steps[-1].get("action"), str) else "sync"
        transitioned(referral=copy, actor=actor, action=action[:32], from_status=changed[0], node=node)
    return copy


def act_for_node(*, node: str, referral_id, data: dict) -> Referral:
    """A receiver's action forwarded by the node hosting the receiving institution: run here, the
    authority, by the lifecycle's every rule (``referral_transition``), for the user or client who acted
    there. Its problems (409, 412, …) are the answer."""
    # The receiving institution, hosted by ``node``, of a referral this node is the authority of (else 404);
    # ``referral_transition`` then reads and locks the referral once, by its every rule (a draft is not
    # visible to its receiver: 404 too).
    institution = (
        Institution.objects.filter(
            node=node, received_referrals__pk=referral_id, received_referrals__from_institution__node=""
        ).first()
        if node
        else None
    )
    if institution is None:
        raise NotVisible()
    actor = remote.node_actor(institution=institution, node=node, acted_by=data.get("by"))
    texts = {name: data.get(name) for name in ("reason", "outcome", "if_match")}
    if not all(value is None or isinstance(value, str) for value in texts.values()):
        raise InvalidInput({"action": ["Texts expected."]})
    action = data.get("action")
    if not isinstance(action, str):
        raise InvalidInput({"action": ["An action expected."]})
    return referral_transition(
        actor=actor,
        referral_id=referral_id,
        action=action,
        reason=texts["reason"],
        outcome=texts["outcome"],
        if_match=texts["if_match"],
    )


@unit_of_work()
def note_for_node(*, node: str, referral_id, data: dict) -> Note:
    """A note written at the receiver's node, arriving through the outbox: added here with its id, by
    ``note_create``'s rules (once: a note id already here is the same note)."""
    referral = _authority_for_node(node, referral_id)
    note_id = remote._uuid(data.get("id"), "note.id")
    existing = Note.objects.filter(pk=note_id, referral=referral).first()
    if existing is not None:
        return existing
    actor = remote.node_actor(institution=referral.to_institution, node=node, acted_by=data.get("by"))
    return note_create(
        actor=actor, referral_id=referral.pk, body=remote._text(data, "body", "note.body"), note_id=note_id
    )


@unit_of_work()
def note_refused(*, node: str, referral_id, note_id, reason: str) -> Note | None:
    """The authority (``node``) refused a note written on this node's copy — its final 4xx answer to the
    note's message (``reason``: its problem slug). The note stays here, marked refused, so the copy no
    longer shows as delivered what the authority never took (the two nodes' notes differ by it, and say
    so); audited ``note.refused`` and its author told in the app. None when there is nothing (more) to
    mark."""
    copy = _copy_for_node(node, referral_id)
    note = (
        Note.objects.select_related("author_user")
        .filter(pk=note_id, referral=copy, author_institution_id=copy.to_institution_id, refused_at=None)
        .first()
    )
    if note is None:
        return None
    note.refused_at, note.refused_reason = timezone.now(), reason[:64]
    Note.objects.filter(pk=note.pk).update(refused_at=note.refused_at, refused_reason=note.refused_reason)
    record(
        actor=remote.node_actor(institution=copy.from_institution, node=node),
        action="note.refused",
        object_type="note",
        object_id=note.pk,
        case_id=copy.case_id,
        institutions=parties(copy),
        detail={"referral_id": str(copy.pk), "node": node, "problem": note.refused_reason},
    )
    author = note.author_user
    if author is not None and author.is_active:
        notify_in_app(
            user=author,
            event_type="referral.note_refused",
            referral=copy,
            data={
                "referral_id": str(copy.pk),
                "reference": copy.reference,
                "status": copy.status,
                "note_id": str(note.pk),
                "problem": note.refused_reason,
                "actor_institution": copy.from_institution.code,
            },
        )
    return note
