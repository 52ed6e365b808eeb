"""Every write on cases and referrals: one transaction each, with permission checks, the timeline,
the audit event and the outbox row written together."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.actor import Actor
from accounts.choices import Province, Role
from accounts.directory import office_of
from accounts.models import Institution, Office, User
from audit import recorder
from audit.recorder import record
from notifications.outbox import emit
from notifications.services import notify_in_app
from plumbing.etag import if_match_satisfied

from . import crypto, permissions, policy, references, remote, routing, rules, signals
from .choices import REVOKING_STATUSES, SUBJECT_FIELDS, TERMINAL_STATUSES, Side, Status, Urgency
from .errors import (
    CaseErased,
    Forbidden,
    InvalidInput,
    MissingField,
    NotVisible,
    OfficeNotAccepting,
    PreconditionFailed,
)
from .lifecycle import REASON_ACTIONS
from .models import Case, Consent, Note, Referral, ReferralEvent, Subject
from .reads import fetch_referral
from .selectors import cases_visible_to, parties, side_of


@contextmanager
def unit_of_work():
    """One unit of work: a transaction whose audit events are appended together at its end (still inside
    it: they commit or roll back with the work they describe). Every write service runs in one
    (``@unit_of_work()``, joining the caller's if there is one); a door answering a write with a read of
    what it wrote (the write's response) runs both in one (``with services.unit_of_work():``): one append
    for all their events."""
    with transaction.atomic(), recorder.batch():
        yield


RESPONSE_TIME = {
    Urgency.EMERGENCY: timedelta(hours=24),
    Urgency.URGENT: timedelta(hours=72),
    Urgency.NORMAL: timedelta(days=14),
}


def _next_reference(institution: Institution, kind: str) -> str:
    """``IOM-2026-000123`` (cases) or ``IOM-R-2026-000045`` (referrals): the counter row is held only for its
    own update (``references``), never until this create commits."""
    return references.next_reference(institution, kind)


def _require_case_access(actor: Actor, case: Case) -> None:
    """Need-to-know: only those who may see a case may change or share it (404 otherwise, like a read)."""
    if not cases_visible_to(actor).filter(pk=case.pk).exists():
        raise NotVisible()


def _set_blind_indexes(subject: Subject) -> None:
    subject.document_number_index = crypto.blind_index(
        "document_number", crypto.normalize_document_number(subject.document_number)
    )


@unit_of_work()
def case_create(*, actor: Actor, subject: dict, summary: str = "") -> Case:
    """Open a case for a migrant; the creating caseworker owns it."""
    policy.require_refer(actor)
    subject = rules.check_subject(subject)
    summary = rules.check_texts(summary=summary or "")["summary"]
    now = timezone.now()
    case = Case(
        institution=actor.institution,
        reference=_next_reference(actor.institution, "case"),
        owner=actor.user,
        summary=summary,
        created_at=now,
        updated_at=now,
    )
    case.save(force_insert=True)
    person = Subject(case=case, **subject)
    _set_blind_indexes(person)
    person.save(force_insert=True)
    signals.subject_saved.send(sender=Subject, case=case, subject=person, new=True)
    permissions.grant_case_owner_institution(case=case, actor=actor)
    if actor.user is not None:
        permissions.grant_case_user(case=case, user=actor.user, actor=actor)
    record(
        actor=actor,
        action="case.created",
        object_type="case",
        object_id=case.pk,
        case_id=case.pk,
        institutions=[case.institution],
        detail={"reference": case.reference},
    )
    return case


@unit_of_work()
def case_update(*, actor: Actor, case: Case, subject: dict | None = None, summary: str | None = None) -> Case:
    """Change the subject's data or the summary (the owner institution only; never once erased)."""
    policy.require_refer(actor)
    _require_case_access(actor, case)
    case = Case.objects.select_for_update().get(pk=case.pk)
    if case.is_erased:
        raise CaseErased()
    if summary is not None:
        summary = rules.check_texts(summary=summary)["summary"]
    changed = []
    if subject:
        person = Subject.objects.select_related("case").get(case=case)
        merged = {name: getattr(person, name) for name in SUBJECT_FIELDS} | dict(subject)
        for name, value in rules.check_subject(merged).items():
            setattr(person, name, value)
        _set_blind_indexes(person)
        person.save()
        signals.subject_saved.send(sender=Subject, case=case, subject=person, new=False)
        changed.extend(sorted(subject))
    if summary is not None:
        case.summary = summary
        changed.append("summary")
    case.updated_at = timezone.now()
    case.save(update_fields=["summary", "updated_at"])
    record(
        actor=actor,
        action="case.updated",
        object_type="case",
        object_id=case.pk,
        case_id=case.pk,
        institutions=[case.institution],
        detail={"fields": changed},
    )
    return case


@unit_of_work()
def case_add_collaborator(*, actor: Actor, case: Case, user: User) -> None:
    """Share a case with another caseworker of the same institution (need-to-know)."""
    policy.require_refer(actor)
    _require_case_access(actor, case)
    if user.institution_id != case.institution_id:
        raise Forbidden("Collaborators must belong to the case's institution.")
    case.collaborators.add(user)
    permissions.grant_case_user(case=case, user=user, actor=actor)


def _event(referral: Referral, actor: Actor, action: str, from_status: str, to_status: str) -> ReferralEvent:
    return ReferralEvent.objects.create(
        referral=referral,
        actor_institution=actor.institution,
        actor_user=actor.user,
        actor_api_client=actor.api_client,
        action=action,
        from_status=from_status,
        to_status=to_status,
        sequence=referral.version,
    )


@unit_of_work()
def referral_create(
    *,
    actor: Actor,
    case: Case,
    to_institution: Institution,
    services: list[str],
    urgency: str,
    reason: str,
    consent: dict | None = None,
    to_office: Office | None = None,
    province: str = "",
) -> Referral:
    """A draft referral of the case to another institution, with the person's consent record.

    ``to_office``: an office of ``to_institution`` (else 400); ``province``: where the person needs the
    service, an ISO 3166-2:PA code (else 400) — routing at ``send`` uses it when no office is named. The
    referral's ``from_office`` is the creating user's office (none for API clients and national staff).

    A draft may be saved without consent (``consent`` absent, or not ``given``: contract §7.1); it is
    sent only with given consent (the ``send`` guard, 409 ``consent-required``)."""
    policy.require_refer_case(actor, case)
    if to_institution.pk == actor.institution.pk:
        raise InvalidInput({"to_institution": ["A referral must go to another institution."]})
    if to_office is not None and to_office.institution_id != to_institution.pk:
        raise InvalidInput({"to_office": ["Choose an office of the receiving institution."]})
    province = province or ""
    if province and province not in Province.values:
        raise InvalidInput({"province": ["Choose a province of Panama (ISO 3166-2:PA)."]})
    consent = consent or {"given": False}
    rules.check_consent(consent)
    reason = rules.check_texts(reason=reason)["reason"]
    now = timezone.now()
    referral = Referral(
        reference=_next_reference(actor.institution, "ref"),
        case=case,
        from_institution=actor.institution,
        to_institution=to_institution,
        to_office=to_office,
        from_office=actor.user.office if actor.user is not None and actor.user.office_id else None,
        province=province,
        services=list(dict.fromkeys(services)),
        urgency=urgency,
        reason=reason,
        status=Status.DRAFT,
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    referral.save(force_insert=True)
    Consent.objects.create(
        referral=referral,
        recipient=to_institution,
        given=bool(consent.get("given")),
        given_by=consent.get("given_by") or "",
        method=consent.get("method") or "",
        obtained_at=consent.get("obtained_at"),
        data_categories=sorted(set(consent.get("data_categories") or [])),
        details=consent.get("details") or "",
        recorded_by=actor.user,
    )
    _event(referral, actor, "create", "", Status.DRAFT)
    record(
        actor=actor,
        action="referral.created",
        object_type="referral",
        object_id=referral.pk,
        case_id=case.pk,
        institutions=[referral.from_institution],
        detail={"reference": referral.reference, "to": to_institution.code},
    )
    return referral


def _check_if_match(if_match: str | None, referral: Referral) -> None:
    if not if_match_satisfied(if_match, referral.etag):
        raise PreconditionFailed()


@unit_of_work()
def referral_transition(
    *,
    actor: Actor,
    referral_id,
    action: str,
    reason: str | None = None,
    outcome: str | None = None,
    if_match: str | None = None,
    assign_to_actor: bool = False,
    read_body: Callable[[], dict] | None = None,
) -> Referral:
    """Apply one lifecycle action. Locks the row; checks in the contract's order:
    visibility (404), side (403), body (400), status (409); then If-Match (412).

    ``read_body`` lets a door parse its request body at the body's place in that order (a malformed
    body of a request that may not act at all is a 403, not a 400): it returns ``reason``/``outcome``.
    """
    policy.require_refer(actor)
    referral = fetch_referral(actor, referral_id, for_update=True)
    transition = policy.authorize_transition(actor=actor, referral=referral, action=action)
    side = side_of(actor, referral)
    if read_body is not None:
        body = read_body()
        reason, outcome = body.get("reason"), body.get("outcome")
    reason = (reason or "").strip() or None
    outcome = (outcome or "").strip() or None
    texts = rules.check_texts(reason=reason, outcome=outcome)
    reason, outcome = texts["reason"], texts["outcome"]
    if transition.needs == "reason" and not reason:
        raise MissingField("reason")
    if transition.needs == "outcome" and not outcome:
        raise MissingField("outcome")
    policy.require_transition_state(actor=actor, referral=referral, transition=transition)
    _check_if_match(if_match, referral)
    policy.require_transition_guards(actor=actor, referral=referral, transition=transition)
    if remote.authority_is_remote(referral):
        return _transition_at_authority(
            actor=actor,
            referral=referral,
            action=action,
            reason=reason,
            outcome=outcome,
            if_match=if_match,
            assign_to_actor=assign_to_actor,
        )

    now = timezone.now()
    from_status = referral.status
    referral.status = transition.to_status
    fields = ["status", "version", "updated_at"]
    if action in REASON_ACTIONS:
        referral.status_reason = reason or ""
        fields.append("status_reason")
    elif action == "resume":
        referral.status_reason = ""
        fields.append("status_reason")
    if action == "complete":
        referral.outcome = outcome
        fields.append("outcome")
    if action == "send":
        referral.sent_at = now
        referral.response_due_at = now + RESPONSE_TIME[Urgency(referral.urgency)]
        fields += ["sent_at", "response_due_at"]
        routed = routing.office_for(referral)
        if routed is not None:
            referral.to_office = routed
            fields.append("to_office")
    if side == Side.RECEIVER and referral.answered_at is None and action in ("receive", "accept", "reject"):
        referral.answered_at = now
        fields.append("answered_at")
    if action == "accept" and assign_to_actor and actor.user is not None:
        referral.assignee = actor.user
        fields.append("assignee")
    # Only a referral that was sent ever gave the receiver access (a cancelled draft can still be voided).
    revokes = (
        transition.to_status in REVOKING_STATUSES
        and referral.sent_at is not None
        and referral.receiver_access_revoked_at is None
    )
    if revokes:
        referral.receiver_access_revoked_at = now
        fields.append("receiver_access_revoked_at")
    referral.version += 1  # the row is locked (fetch_referral(for_update=True)) until the transaction ends
    referral.updated_at = now
    referral.save(update_fields=fields)

    if action == "send":
        permissions.grant_receiver(referral=referral, actor=actor)
    if action == "accept" and referral.assignee_id == getattr(actor.user, "pk", None) and assign_to_actor:
        permissions.grant_receiver_user(referral=referral, user=actor.user, actor=actor)
    if revokes:
        permissions.revoke_receiver(referral=referral, actor=actor)

    _event(referral, actor, action, from_status, transition.to_status)
    extra = {"office": referral.to_office.code} if action == "send" and referral.to_office_id else {}
    transitioned(referral=referral, actor=actor, action=action, from_status=from_status, **extra)
    signals.referral_changed.send(
        sender=Referral, referral=referral, actor=actor, change="sent" if action == "send" else "transitioned"
    )
    return referral


def transitioned(*, referral: Referral, actor: Actor, action: str, from_status: str, **detail) -> None:
    """What every change of a referral's status leaves, whichever node decided it: the audit event
    ``referral.transitioned`` (``detail``: action, from, to, and ``detail``'s extras) and the institutions'
    webhook (``referral.requested`` at ``send``, else ``referral.status_changed``)."""
    record(
        actor=actor,
        action="referral.transitioned",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"action": action, "from": from_status, "to": referral.status, **detail},
    )
    emit(
        event_type="referral.requested" if action == "send" else "referral.status_changed",
        referral=referral,
        payload={
            "action": action,
            "from_status": from_status,
            "to_status": referral.status,
            "actor_institution": actor.institution.code,
        },
    )


def _transition_at_authority(
    *, actor: Actor, referral: Referral, action: str, reason, outcome, if_match, assign_to_actor: bool
) -> Referral:
    """A receiver's action on this node's copy of a referral another node is the authority of (contract
    §7.4): every check above passed here; the authority decides (its 409/412 are the answer, 503
    ``peer-unavailable`` when it cannot be reached, nothing changed), and the copy takes its new state —
    status, version (the ``ETag``), the timeline with the authority's ids. This node then does what is its
    own: the assignee, the audit of its user's act, its institution's webhooks."""
    answer = remote.forward(
        referral,
        "referral.action",
        {
            "action": action,
            "reason": reason,
            "outcome": outcome,
            "if_match": if_match,
            "by": remote.who(actor),
        },
    )
    from_status = referral.status
    remote.apply_state(referral, answer, actor=actor)
    if action == "accept" and assign_to_actor and actor.user is not None:
        referral.assignee = actor.user
        referral.save(update_fields=["assignee"])
        permissions.grant_receiver_user(referral=referral, user=actor.user, actor=actor)
    transitioned(
        referral=referral,
        actor=actor,
        action=action,
        from_status=from_status,
        node=referral.from_institution.node,
    )
    return referral


@unit_of_work()
def note_create(*, actor: Actor, referral_id, body: str, if_match: str | None = None, note_id=None) -> Note:
    """A note between the two institutions, while the receiver has access and the case is not erased."""
    policy.require_refer(actor)
    referral = fetch_referral(actor, referral_id, for_update=True)
    policy.require_note(actor, referral)
    body = rules.check_texts(body=body)["body"]
    _check_if_match(if_match, referral)
    note = Note(
        referral=referral,
        author_institution=actor.institution,
        author_user=actor.user,
        author_api_client=actor.api_client,
        body=body,
    )
    if note_id is not None:
        note.id = note_id  # a note written at the other node keeps its id (referrals.federated)
    note.save(force_insert=True)
    if not remote.authority_is_remote(referral):
        # On a copy the version is the authority's: it changes when the note reaches it (contract §7.4).
        referral.version += 1  # the row is locked (fetch_referral(for_update=True))
        referral.updated_at = timezone.now()
        Referral.objects.filter(pk=referral.pk).update(
            version=referral.version, updated_at=referral.updated_at
        )
    record(
        actor=actor,
        action="note.created",
        object_type="note",
        object_id=note.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"referral_id": str(referral.pk)},
    )
    if referral.sent_at is not None:
        emit(
            event_type="referral.note_added",
            referral=referral,
            payload={"note_id": str(note.pk), "actor_institution": actor.institution.code},
        )
    signals.referral_changed.send(sender=Referral, referral=referral, actor=actor, change="note", note=note)
    return note


@unit_of_work()
def consent_withdraw(
    *,
    actor: Actor,
    referral_id,
    reason: str = "",
    if_match: str | None = None,
    read_body: Callable[[], dict] | None = None,
) -> Referral:
    """The person withdrew consent: record it, cancel the referral if open, revoke the receiver.

    Checks in the contract's order: visibility (404), side (403), body (400), status (409), If-Match
    (412); ``read_body`` lets a door parse its body at its place (returns ``reason``), as for actions.
    """
    policy.require_refer(actor)
    referral = fetch_referral(actor, referral_id, for_update=True)
    policy.require_withdraw_consent(actor, referral)
    if read_body is not None:
        reason = read_body().get("reason")
    reason = rules.check_texts(reason=(reason or "").strip())["reason"]
    if not reason:
        raise MissingField("reason")
    policy.require_consent_not_withdrawn(referral)
    consent = referral.consent
    _check_if_match(if_match, referral)
    consent.withdrawn_at = timezone.now()
    consent.withdrawal_reason = reason
    consent.save(update_fields=["withdrawn_at", "withdrawal_reason"])
    record(
        actor=actor,
        action="consent.withdrawn",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"consent_id": str(consent.pk)},
    )
    if referral.status not in TERMINAL_STATUSES:
        referral = referral_transition(actor=actor, referral_id=referral.pk, action="cancel", reason=reason)
    elif referral.sent_at is not None and referral.receiver_access_revoked_at is None:
        Referral.objects.filter(pk=referral.pk).update(
            receiver_access_revoked_at=timezone.now(), version=F("version") + 1, updated_at=timezone.now()
        )
        permissions.revoke_receiver(referral=referral, actor=actor)
        referral.refresh_from_db()
    if referral.sent_at is not None:
        signals.consent_withdrawn.send(sender=Referral, referral=referral, actor=actor)
    return referral


# --- assignment of inbound referrals (issue 12) ------------------------------------------------------


def _set_assignee(*, actor: Actor, referral: Referral, assignee: User, how: str) -> Referral:
    """Assign, grant the assignee's per-object permissions, record, and tell the assignee (in-app)."""
    previous = referral.assignee_id
    referral.assignee = assignee
    referral.version += 1  # locked by the caller (fetch_referral(for_update=True))
    referral.updated_at = timezone.now()
    referral.save(update_fields=["assignee", "version", "updated_at"])
    if previous and previous != assignee.pk:
        permissions.revoke_receiver_user(referral=referral, user_id=previous, actor=actor)
    permissions.grant_receiver_user(referral=referral, user=assignee, actor=actor)
    record(
        actor=actor,
        action="referral.assigned",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"how": how, "assignee": str(assignee.pk), "previous": str(previous) if previous else ""},
    )
    if actor.user is None or assignee.pk != actor.user.pk:
        notify_in_app(
            user=assignee,
            event_type="referral.assigned",
            referral=referral,
            data={
                "referral_id": str(referral.pk),
                "reference": referral.reference,
                "status": referral.status,
                "action": how,
                "actor_institution": actor.institution.code,
            },
        )
    return referral


@unit_of_work()
def referral_take(*, actor: Actor, referral_id) -> Referral:
    """A caseworker takes an unassigned inbound referral of the institution (the team queue)."""
    policy.require_takes_referrals(actor)
    referral = fetch_referral(actor, referral_id, for_update=True)
    policy.require_take(actor, referral)
    return _set_assignee(actor=actor, referral=referral, assignee=actor.user, how="take")


@unit_of_work()
def referral_assign(*, actor: Actor, referral_id, assignee: User) -> Referral:
    """A supervisor assigns (or reassigns) an inbound referral to an active caseworker of the institution."""
    policy.require_assigns_referrals(actor)
    referral = fetch_referral(actor, referral_id, for_update=True)
    policy.require_assign(actor, referral)
    if not policy.may_be_assigned(assignee, actor, referral):
        raise InvalidInput({"assignee": ["Choose an active caseworker of your institution."]})
    if referral.assignee_id == assignee.pk:
        return referral
    return _set_assignee(actor=actor, referral=referral, assignee=assignee, how="assign")


# --- routing inside the receiving institution (issue 20, contract §7.2) ---------------------------------


@unit_of_work()
def referral_route(
    *,
    actor: Actor,
    referral_id,
    to_office: Office | str | None = None,
    if_match: str | None = None,
    read_body: Callable[[], dict] | None = None,
) -> Referral:
    """Move a received referral to another office of the receiving institution (``to_office``: the office
    or its code; ``None``: back to the national intake). Checks in the contract's order: visibility (404),
    who may route (403), the body and the office (400: unknown, or not of the receiving institution), the
    status (409: terminal), If-Match (412), the office accepting referrals (409 ``office-not-accepting``).
    ``read_body`` lets a door parse its body at its place: it returns ``{"to_office": code | None}``.

    The grants follow the office; the timeline gains ``route``; audited ``referral.routed``; the new
    office's caseworkers are told in the app (not a webhook event). An assignee working in another office
    is unassigned. Routing to the office that already holds it changes nothing."""
    policy.require_refer(actor)
    referral = fetch_referral(actor, referral_id, for_update=True)
    policy.authorize_route(actor, referral)
    if read_body is not None:
        to_office = read_body().get("to_office")
    if isinstance(to_office, str):
        to_office = office_of(referral.to_institution_id, to_office)
        if to_office is None:
            raise InvalidInput({"to_office": ["Unknown office of the receiving institution."]})
    if to_office is not None and to_office.institution_id != referral.to_institution_id:
        raise InvalidInput({"to_office": ["Choose an office of the receiving institution."]})
    policy.require_route_state(actor, referral)
    _check_if_match(if_match, referral)
    if referral.to_office_id == (to_office.pk if to_office else None):
        return referral
    if to_office is not None and not to_office.is_accepting():
        raise OfficeNotAccepting(to_office.paused_until)
    previous = referral.to_office if referral.to_office_id else None
    referral.to_office = to_office
    fields = ["to_office", "version", "updated_at"]
    dropped = None
    if referral.assignee_id is not None and to_office is not None:
        office_id = User.objects.filter(pk=referral.assignee_id).values_list("office_id", flat=True).first()
        if office_id is not None and office_id != to_office.pk:
            # The assignee works in another office: no need to know any more; the new office takes it.
            dropped, referral.assignee = referral.assignee_id, None
            fields.append("assignee")
    if not remote.authority_is_remote(referral):  # on a copy the version is the authority's (§7.4)
        referral.version += 1  # locked by fetch_referral(for_update=True)
    referral.updated_at = timezone.now()
    referral.save(update_fields=fields)
    permissions.move_receiver_office(referral=referral, previous=previous, actor=actor)
    if dropped is not None:
        permissions.revoke_receiver_user(referral=referral, user_id=dropped, actor=actor)
    _event(referral, actor, "route", referral.status, referral.status)
    record(
        actor=actor,
        action="referral.routed",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={
            "from": previous.code if previous else "",
            "to": to_office.code if to_office else "",
            "unassigned": dropped is not None,
        },
    )
    if to_office is not None:
        data = {
            "referral_id": str(referral.pk),
            "reference": referral.reference,
            "status": referral.status,
            "action": "route",
            "office": to_office.code,
            "actor_institution": actor.institution.code,
        }
        for user in User.objects.filter(office=to_office, role=Role.CASEWORKER, is_active=True):
            if actor.user is None or user.pk != actor.user.pk:
                notify_in_app(user=user, event_type="referral.routed", referral=referral, data=data)
    return referral
