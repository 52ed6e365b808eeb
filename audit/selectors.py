"""Reads of the audit log, scoped to the actor's institution."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import AuditEvent


def events_visible_to(actor) -> QuerySet[AuditEvent]:
    """Events an institution's auditors may read (contract §4, Audit).

    Those whose actor belongs to the institution, and those on a case or referral it owns, sent or
    received: the recorder writes both into ``institutions`` (",IOM,DP,"), so one LIKE finds them.
    """
    return AuditEvent.objects.filter(institutions__contains=f",{actor.institution.code},")
