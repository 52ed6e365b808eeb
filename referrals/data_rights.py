"""Data-subject rights: access (export everything held on a person) and erasure (crypto-shredding).

Both are operator actions (management commands, the retention task), not partner-API endpoints: an access
or erasure request reaches the institution that owns the case, which verifies the person's identity
outside this system. Each is one transaction with its audit event, which carries counts and ids only.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import record

from . import crypto, permissions, remote, signals
from .choices import CATEGORY_FIELDS, SUBJECT_FIELDS
from .models import Case, Consent, Note, Referral, ReferralEvent, Subject
from .selectors import parties

EXPORT_FORMAT = "rcm-subject-export/1"

#: The encrypted columns of each model: erasure overwrites them with NULL after destroying the key.
ENCRYPTED_COLUMNS = {
    Case: ("summary",),
    Subject: SUBJECT_FIELDS,
    Referral: ("reason", "status_reason", "outcome"),
    Consent: ("details", "withdrawal_reason"),
    Note: ("body",),
}


class CaseNotFound(LookupError):
    """No case has this id or reference (the message repeats neither)."""


def find_case(identifier: str) -> Case:
    """A case by its id (UUID) or its reference (``IOM-2026-000123``)."""
    identifier = (identifier or "").strip()
    try:
        case_id = uuid.UUID(identifier)
    except ValueError:
        case = Case.objects.filter(reference=identifier.upper()).first()
    else:
        case = Case.objects.filter(pk=case_id).first()
    if case is None:
        raise CaseNotFound("no case with this id or reference")
    return case


def _iso(value) -> str | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _parties(case: Case, referrals) -> list:
    """The case's institution and those its referrals concern (a draft's receiver is none of them)."""
    return [case.institution] + [institution for r in referrals for institution in parties(r)]


@transaction.atomic
def subject_export(*, case: Case, operator: str = "") -> dict:
    """Everything held on the person of ``case``, as a JSON-ready dict (for an access request).

    Personal values are decrypted (``None`` once erased); the metadata around them (referrals, consents,
    timeline, and who accessed the file, from the audit log) is included so that the person learns what
    was shared, with whom and when. Audited as ``subject.exported`` (counts only).
    """
    case = Case.objects.select_related("institution").get(pk=case.pk)
    subject = Subject.objects.filter(case=case).first()
    if subject is not None:
        subject.case = case  # share the unwrapped data key
    referrals = list(
        Referral.objects.filter(case=case)
        .select_related("from_institution", "to_institution", "consent__recipient")
        .order_by("created_at", "id")
    )
    events = {}
    for event in ReferralEvent.objects.filter(referral__case=case).select_related("actor_institution"):
        events.setdefault(event.referral_id, []).append(event)
    notes = {}
    for note in Note.objects.filter(referral__case=case).select_related("author_institution").order_by("at"):
        notes.setdefault(note.referral_id, []).append(note)

    out_referrals = []
    consent_count = 0
    for referral in referrals:
        referral.case = case
        consent = getattr(referral, "consent", None)
        if consent is not None:
            consent.referral = referral
            consent_count += 1
        out_referrals.append(
            {
                "id": str(referral.pk),
                "reference": referral.reference,
                "from_institution": referral.from_institution.code,
                "to_institution": referral.to_institution.code,
                "services": referral.services,
                "urgency": referral.urgency,
                "status": referral.status,
                "reason": referral.reason,
                "status_reason": referral.status_reason,
                "outcome": referral.outcome,
                "sent_at": _iso(referral.sent_at),
                "response_due_at": _iso(referral.response_due_at),
                "answered_at": _iso(referral.answered_at),
                "receiver_access_revoked_at": _iso(referral.receiver_access_revoked_at),
                "created_at": _iso(referral.created_at),
                "updated_at": _iso(referral.updated_at),
                "consent": None
                if consent is None
                else {
                    "recipient": consent.recipient.code,
                    "given": consent.given,
                    "given_by": consent.given_by,
                    "method": consent.method,
                    "obtained_at": _iso(consent.obtained_at),
                    "data_categories": consent.data_categories,
                    "details": consent.details,
                    "recorded_at": _iso(consent.recorded_at),
                    "withdrawn_at": _iso(consent.withdrawn_at),
                    "withdrawal_reason": consent.withdrawal_reason,
                },
                "notes": [
                    {
                        "id": str(note.pk),
                        "at": _iso(note.at),
                        "author_institution": note.author_institution.code,
                        "body": _note_body(note, referral),
                    }
                    for note in notes.get(referral.pk, [])
                ],
                "timeline": [
                    {
                        "at": _iso(event.at),
                        "actor_institution": event.actor_institution.code,
                        "action": event.action,
                        "from_status": event.from_status,
                        "to_status": event.to_status,
                    }
                    for event in events.get(referral.pk, [])
                ],
            }
        )
    access_log = [
        {"at": _iso(at), "action": action, "actor_institution": institution, "object_type": object_type}
        for at, action, institution, object_type in AuditEvent.objects.filter(case_id=str(case.pk))
        .order_by("sequence")
        .values_list("at", "action", "actor_institution", "object_type")
    ]
    note_count = sum(len(v) for v in notes.values())
    export = {
        "format": EXPORT_FORMAT,
        "generated_at": _iso(timezone.now()),
        "case": {
            "id": str(case.pk),
            "reference": case.reference,
            "institution": case.institution.code,
            "summary": case.summary,
            "created_at": _iso(case.created_at),
            "updated_at": _iso(case.updated_at),
            "closed_at": _iso(case.closed_at),
            "erased_at": _iso(case.erased_at),
        },
        "subject": None
        if subject is None or case.is_erased
        else {name: _iso(getattr(subject, name)) for name in SUBJECT_FIELDS},
        "referrals": out_referrals,
        "access_log": access_log,
    }
    record(
        action="subject.exported",
        actor_type="system",
        actor_label=(operator or "manage.py export_subject")[:160],
        object_type="case",
        object_id=case.pk,
        case_id=case.pk,
        institutions=_parties(case, referrals),
        detail={
            "reference": case.reference,
            "referrals": len(referrals),
            "consents": consent_count,
            "notes": note_count,
            "erased": case.is_erased,
        },
    )
    return export


def _note_body(note: Note, referral: Referral):
    note.referral = referral
    return note.body


@transaction.atomic
def subject_erase(*, case: Case, trigger: str = "request", operator: str = "") -> dict:
    """Crypto-shred everything personal about the person of ``case``; keep the metadata for statistics.

    * the case's wrapped data key is destroyed (``wrapped_data_key = NULL``, ``erased_at`` set): every
      ciphertext of the case — in this database and in every backup — can no longer be decrypted;
    * the ciphertexts themselves are overwritten with NULL and the blind indexes emptied, so the live
      database holds nothing about the person, not even a searchable hash;
    * referrals, consents (their categories and dates), the timeline and notes' metadata stay;
    * every receiver that still had access to personal data loses it (``receiver_access_revoked_at``;
      ``permission.revoked`` events): there is nothing left to show, and a receiver never writes new
      personal data onto an erased file;
    * open referrals keep their status: the institutions close them as usual (their free texts are then
      not stored, see ``referrals.fields``).

    Idempotent: erasing an erased case changes nothing and records nothing. Returns counts.
    """
    if trigger not in ("request", "retention"):
        raise ValueError("trigger must be 'request' or 'retention'")
    case = Case.objects.select_for_update().select_related("institution").get(pk=case.pk)
    if case.is_erased and case.wrapped_data_key is None:
        return {"reference": case.reference, "already_erased": True}
    now = timezone.now()
    referrals = list(
        Referral.objects.filter(case=case).select_related("from_institution", "to_institution").order_by("pk")
    )
    referral_ids = [r.pk for r in referrals]
    counts = {
        "referrals": len(referrals),
        "consents": Consent.objects.filter(referral_id__in=referral_ids).count(),
        "notes": Note.objects.filter(referral_id__in=referral_ids).count(),
    }

    Case.objects.filter(pk=case.pk).update(
        wrapped_data_key=None, erased_at=now, updated_at=now, **dict.fromkeys(ENCRYPTED_COLUMNS[Case])
    )
    Subject.objects.filter(case=case).update(
        document_number_index="", **dict.fromkeys(ENCRYPTED_COLUMNS[Subject])
    )
    signals.subject_erased.send(sender=Subject, case_id=case.pk)
    Referral.objects.filter(pk__in=referral_ids).update(
        version=F("version") + 1, updated_at=now, **dict.fromkeys(ENCRYPTED_COLUMNS[Referral])
    )
    Consent.objects.filter(referral_id__in=referral_ids).update(**dict.fromkeys(ENCRYPTED_COLUMNS[Consent]))
    Note.objects.filter(referral_id__in=referral_ids).update(**dict.fromkeys(ENCRYPTED_COLUMNS[Note]))

    revoked = 0
    for referral in referrals:
        if referral.sent_at is not None and referral.receiver_access_revoked_at is None:
            Referral.objects.filter(pk=referral.pk).update(receiver_access_revoked_at=now)
            permissions.revoke_receiver(referral=referral, actor=None)
            revoked += 1
    counts["receivers_revoked"] = revoked

    record(
        action="subject.erased",
        actor_type="system",
        actor_label=(operator or f"erasure:{trigger}")[:160],
        object_type="case",
        object_id=case.pk,
        case_id=case.pk,
        institutions=_parties(case, referrals),
        detail={"reference": case.reference, "trigger": trigger, **counts},
    )
    # Unwrapped data keys cached in this process go too (other processes can no longer unwrap it either:
    # the wrapped key is gone from the database).
    transaction.on_commit(crypto.forget_cached_keys)
    return {"reference": case.reference, "already_erased": False, **counts}


# --- Federation (contract §7.4): consent withdrawal across nodes -------------------------------------------


class NotACopy(LookupError):
    """No referral with this id was sent to this node by the node asking (the message repeats neither)."""


def _live_copies(case: Case, referral: Referral) -> list[Referral]:
    """The case's other referrals whose receiver still holds personal data (another copy of the same case,
    sent by the same node under its own consent)."""
    return list(
        Referral.objects.filter(
            case=case, receiver_access_revoked_at__isnull=True, consent__withdrawn_at=None
        )
        .exclude(pk=referral.pk)
        .select_related("consent")
    )


@transaction.atomic
def copy_shred(*, referral_id, node: str) -> dict:
    """Destroy this node's copy of a referral its sender's node (``node``, the sender's URL) withdrew consent
    for: the receiver's node half of a consent withdrawal across nodes (``NotACopy`` unless the referral is
    a copy from ``node``).

    * the copy's consent is marked withdrawn and the receiving institution's grants on it are revoked (it
      keeps the metadata, as on one node: ``permission.revoked``);
    * its own ciphertexts are overwritten with NULL: the reason, status reason and outcome, the consent's
      details, every note's body;
    * the person: when no other copy of the same case still holds personal data, the case is crypto-shredded
      as ``subject_erase`` does it (its data key destroyed, ``erased_at`` set, the subject's columns and blind
      indexes emptied, derived indexes forgotten); otherwise only the subject fields that no remaining copy's
      consent covers are emptied.

    Audited as ``referral.copy_shredded`` (ids, counts and the node's URL), by the sending institution acting
    through its node (``remote.node_actor``). The copy's version is left alone: it is the authority's. The
    federation door keeps the answer it gave (``shredded_at``), so that a withdrawal repeated gets the same
    one. Returns
    ``{"shredded_at", "case_erased", "notes"}``.
    """
    referral = (
        Referral.objects.select_for_update()
        .select_related("from_institution", "to_institution")
        .filter(pk=referral_id)
        .first()
    )
    if referral is None or not node or referral.from_institution.node != node:
        raise NotACopy("no copy of this referral from this node")
    case = Case.objects.select_for_update().get(pk=referral.case_id)
    now = timezone.now()
    Consent.objects.filter(referral=referral, withdrawn_at=None).update(withdrawn_at=now)
    Consent.objects.filter(referral=referral).update(**dict.fromkeys(ENCRYPTED_COLUMNS[Consent]))
    notes = Note.objects.filter(referral=referral).update(**dict.fromkeys(ENCRYPTED_COLUMNS[Note]))
    # The version stays the authority's (the copy's ETag; a later state from the sender's node still applies).
    texts = dict.fromkeys(ENCRYPTED_COLUMNS[Referral])
    Referral.objects.filter(pk=referral.pk).update(updated_at=now, **texts)
    actor = remote.node_actor(institution=referral.from_institution, node=node)
    if referral.receiver_access_revoked_at is None or permissions.receiver_holds_personal(referral):
        Referral.objects.filter(pk=referral.pk, receiver_access_revoked_at=None).update(
            receiver_access_revoked_at=now
        )
        permissions.revoke_receiver(referral=referral, actor=actor)

    live = _live_copies(case, referral)
    case_erased = not live
    if case_erased and case.wrapped_data_key is not None:
        Case.objects.filter(pk=case.pk).update(
            wrapped_data_key=None, erased_at=now, updated_at=now, **dict.fromkeys(ENCRYPTED_COLUMNS[Case])
        )
        Subject.objects.filter(case=case).update(
            document_number_index="", **dict.fromkeys(ENCRYPTED_COLUMNS[Subject])
        )
        signals.subject_erased.send(sender=Subject, case_id=case.pk)
        transaction.on_commit(crypto.forget_cached_keys)
    elif not case_erased:
        kept = {name for other in live for c in other.consent.data_categories for name in CATEGORY_FIELDS[c]}
        dropped = [name for name in SUBJECT_FIELDS if name not in kept]
        subject = Subject.objects.filter(case=case).first()
        if subject is not None and dropped:
            subject.case = case
            for name in dropped:
                setattr(subject, name, None)
            if "document_number" in dropped:
                subject.document_number_index = ""
                dropped.append("document_number_index")
            subject.save(update_fields=dropped)
            signals.subject_saved.send(sender=Subject, case=case, subject=subject, new=False)
    record(
        actor=actor,
        action="referral.copy_shredded",
        object_type="referral",
        object_id=referral.pk,
        case_id=case.pk,
        institutions=parties(referral),
        detail={"node": node, "case_erased": case_erased, "notes": notes},
    )
    return {"shredded_at": now, "case_erased": case_erased, "notes": notes}


@transaction.atomic
def withdrawal_confirmed(*, referral_id, node: str, shredded_at: datetime) -> bool:
    """The receiver's node (``node``) answered a consent withdrawal with its signed receipt: recorded here,
    at the sender, as ``consent.withdrawal_confirmed`` (``detail``: the node and its ``shredded_at``). False,
    recording nothing, unless this node sent the referral to an institution of that node."""
    referral = (
        Referral.objects.select_related("from_institution", "to_institution").filter(pk=referral_id).first()
    )
    if referral is None or not node or referral.from_institution.node or referral.to_institution.node != node:
        return False
    record(
        actor=remote.node_actor(institution=referral.to_institution, node=node),
        action="consent.withdrawal_confirmed",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=parties(referral),
        detail={"node": node, "shredded_at": shredded_at.isoformat()},
    )
    return True
