"""Labels for codes (actions, subject fields, choices), translated at render time."""

from __future__ import annotations

import datetime

from django.utils import formats
from django.utils.translation import gettext_lazy as _

from referrals.choices import DocumentType, Sex

from . import names

SUBJECT_LABELS = {
    "given_name": _("Given names"),
    "family_name": _("Family names"),
    "date_of_birth": _("Date of birth"),
    "sex": _("Sex"),
    "nationality": _("Nationality"),
    "languages": _("Languages"),
    "is_minor": _("Minor"),
    "phone": _("Phone"),
    "email": _("E-mail"),
    "current_location": _("Current location"),
    "document_type": _("Document type"),
    "document_number": _("Document number"),
    "protection_needs": _("Protection needs"),
}

ACTION_LABELS = {
    "create": _("Created"),
    "send": _("Send"),
    "receive": _("Mark as received"),
    "accept": _("Accept"),
    "reject": _("Reject"),
    "start": _("Start the service"),
    "hold": _("Put on hold"),
    "resume": _("Resume"),
    "complete": _("Complete"),
    "fail": _("Mark as failed"),
    "cancel": _("Cancel the referral"),
    "void": _("Void (entered in error)"),
}

#: Past-tense labels for the timeline.
EVENT_LABELS = {
    "create": _("Draft created"),
    "send": _("Sent"),
    "receive": _("Received"),
    "accept": _("Accepted"),
    "reject": _("Rejected"),
    "start": _("Service started"),
    "hold": _("Placed on hold"),
    "resume": _("Resumed"),
    "complete": _("Completed"),
    "fail": _("Failed"),
    "cancel": _("Cancelled"),
    "void": _("Voided"),
    "route": _("Routed to another office"),
}

AUDIT_ACTION_LABELS = {
    "case.created": _("created the case"),
    "case.viewed": _("viewed the case"),
    "case.updated": _("changed the case"),
    "case.searched": _("searched for cases"),
    "case.linked": _("linked two cases as the same person"),
    "case.unlinked": _("undid a link between two cases"),
    "statistics.viewed": _("viewed the referral statistics"),
    "statistics.exported": _("exported the referral statistics"),
    "keys.rotated": _("rotated the encryption keys"),
    "referral.created": _("created a referral"),
    "referral.viewed": _("viewed a referral with personal data"),
    "referral.metadata_viewed": _("viewed a referral's metadata"),
    "referral.transitioned": _("changed a referral's status"),
    "note.created": _("wrote a note"),
    "note.viewed": _("read the notes"),
    "note.refused": _("refused a note written on its referral's copy"),
    "consent.withdrawn": _("recorded the withdrawal of consent"),
    "consent.withdrawal_confirmed": _("the receiver's node confirmed it destroyed its copy"),
    "referral.copy_shredded": _("destroyed this node's copy after the withdrawal of consent"),
    "subject.exported": _("exported the person's data"),
    "subject.erased": _("erased the person's data"),
    "permission.granted": _("access granted"),
    "permission.revoked": _("access revoked"),
    "access.denied": _("access denied"),
    "auth.login": _("signed in"),
    "auth.login_failed": _("failed to sign in"),
    "auth.logout": _("signed out"),
    "audit.exported": _("exported the audit log"),
    "audit.verification_failed": _("the audit log failed verification"),
    "federation.checkpoint_conflict": _("a peer node's audit log is inconsistent"),
    "auth.otp_enrolled": _("set up two-factor sign-in"),
    "auth.otp_verified": _("passed the two-factor step"),
    "auth.otp_failed": _("entered a wrong two-factor code"),
    "auth.token_refused": _("an API token was refused"),
    "user.created": _("created a staff account"),
    "user.changed": _("changed a staff account"),
    # Recorded before the contract's name (user.changed): kept so that older events still read as words.
    "user.updated": _("changed a staff account"),
    "user.activated": _("reactivated a staff account"),
    "user.deactivated": _("deactivated a staff account"),
    "user.second_factor_reset": _("reset a user's two-factor sign-in"),
    "institution.created": _("created an institution"),
    "institution.updated": _("changed an institution"),
    "api_client.created": _("created an API client"),
    "api_client.revoked": _("revoked an API client"),
    "webhook.created": _("subscribed a webhook"),
    "webhook.deleted": _("removed a webhook"),
    "webhook.replayed": _("replayed a webhook delivery"),
    "referral.list_viewed": _("viewed a list of referrals with people's names"),
    "case.list_viewed": _("viewed a list of cases with people's names"),
    "referral.assigned": _("assigned a referral"),
    "referral.printed": _("printed a referral sheet"),
    "referral.routed": _("routed a referral to an office"),
    "office.created": _("created an office"),
    "office.changed": _("changed an office"),
    "office.paused": _("paused an office"),
    "office.resumed": _("resumed an office"),
    "office.synced_from_peer": _("updated the offices a peer node serves"),
    "referral.delivered": _("received a referral from a peer node"),
    "federation.refused": _("a message to this node was refused"),
    "federation.peer_added": _("pinned a peer node"),
    "federation.peer_updated": _("updated a peer node's institutions"),
    "federation.peer_replaced": _("replaced a peer node's keys"),
    "federation.peer_audit_key_pinned": _("pinned a peer node's new audit log key"),
    "institution.named_from_peer": _("took the institution names a peer node gives"),
}

#: How every page marks a remote institution (contract §7.4: hosted by a peer node, not by this one).
HOSTED_ELSEWHERE = _("hosted on another node")


def institution_label(institution) -> str:
    """``DP — Defensoría del Pueblo``, with ``(hosted on another node)`` for a remote institution: the
    referral form's picker."""
    label = f"{institution.code} — {institution.name}"
    return f"{label} ({HOSTED_ELSEWHERE})" if institution.node else label


AUDIT_OUTCOME_LABELS = {
    "success": _("success"),
    "denied": _("denied"),
    "failure": _("failure"),
}

AUDIT_OBJECT_TYPE_LABELS = {
    "case": _("case"),
    "referral": _("referral"),
    "note": _("note"),
    "subject": _("person"),
    "user": _("staff account"),
    "institution": _("institution"),
    "api_client": _("API client"),
    "webhook": _("webhook"),
    "audit_log": _("audit log"),
    "office": _("office"),
}


NOTIFICATION_LABELS = {
    "referral.requested": _("New referral for your institution"),
    "referral.status_changed": _("A referral changed status"),
    "referral.note_added": _("New note on a referral"),
    "referral.overdue": _("A referral is overdue"),
    "referral.assigned": _("A referral was assigned to you"),
    "referral.routed": _("A referral was routed to your office"),
    "referral.note_refused": _("Your note was not accepted by the institution that sent the referral"),
}

#: What happened, for a ``referral.status_changed`` notification: the event's own action (from its
#: payload), not the referral's status when the list is read (which would repeat the latest one).
NOTIFICATION_ACTION_LABELS = {
    "receive": _("Referral received"),
    "accept": _("Referral accepted"),
    "reject": _("Referral rejected"),
    "start": _("Referral started"),
    "hold": _("Referral put on hold"),
    "resume": _("Referral resumed"),
    "complete": _("Referral completed"),
    "fail": _("Referral failed"),
    "cancel": _("Referral cancelled"),
    "void": _("Referral voided"),
}


def notification_text(event_type: str, data: dict | None) -> str:
    """The line a notification shows: names the event that happened ("Referral accepted")."""
    action = (data or {}).get("action", "")
    if event_type == "referral.status_changed" and action in NOTIFICATION_ACTION_LABELS:
        return str(NOTIFICATION_ACTION_LABELS[action])
    return str(NOTIFICATION_LABELS.get(event_type, event_type))


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def _display(name: str, value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if name == "sex":
        return str(Sex(value).label) if value in Sex.values else str(value)
    if name == "document_type":
        return str(DocumentType(value).label) if value in DocumentType.values else str(value)
    if name == "is_minor":
        return str(_("Yes")) if value else str(_("No"))
    if name == "languages":
        return names.language_names(value)
    if name == "nationality":
        return names.country_name(value)
    if name == "date_of_birth":
        if isinstance(value, str):
            value = datetime.date.fromisoformat(value)
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    return str(value)


def subject_rows(subject: dict) -> list[dict]:
    """``[{"name", "label", "value"}]`` in the order of the data categories (for a ``<dl>``)."""
    order = list(SUBJECT_LABELS)
    names = sorted(subject, key=lambda n: order.index(n) if n in order else len(order))
    return [
        {"name": name, "label": SUBJECT_LABELS.get(name, name), "value": _display(name, subject[name])}
        for name in names
    ]
