"""The audit log page's filters, read through the core (``audit.selectors``, ``referrals.worklists``).

The start page, the lists and the supervisors' dashboards read through ``referrals.worklists``.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
import uuid

from django.utils import timezone, translation

from accounts.actor import Actor
from audit import selectors as audit_selectors
from referrals import worklists

from .presentation import AUDIT_ACTION_LABELS

# --- the audit log's pages: the filters of the form, over the one predicate of audit.selectors -----------


ACTION_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a label ("Acceso DENEGADO" matches "acceso denegado")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


def actions_matching(text: str) -> tuple[str, ...]:
    """The action codes that ``text`` names: the code itself, or (part of) its label in Spanish or English."""
    wanted = _fold(text)
    if not wanted:
        return ()
    codes = set()
    for code, label in AUDIT_ACTION_LABELS.items():
        if wanted == code:
            codes.add(code)
            continue
        for language in ("es", "en"):
            with translation.override(language):
                if wanted in _fold(str(label)):
                    codes.add(code)
    if not codes and ACTION_CODE.match(text):
        codes.add(text)  # a code with no label yet (e.g. a newer action)
    return tuple(sorted(codes))


def _objects_named(actor: Actor, reference: str) -> tuple[str, ...]:
    """The ids of the case or referral of the actor's institution with this reference (any case)."""
    return audit_selectors.object_ids(worklists.ids_with_reference(actor, reference))


def audit_filters(actor: Actor, cleaned: dict) -> audit_selectors.EventFilters:
    """The audit form's values as the audit selector's filters.

    The object field takes an id, the short id shown on the page (its first 8 hex digits, or more), or a
    case's or referral's reference; the action field a code or (part of) its label in either language.
    """
    values: dict = {}
    nothing = False
    if cleaned.get("action"):
        values["actions"] = actions_matching(cleaned["action"])
        nothing = nothing or not values["actions"]
    if cleaned.get("actor"):
        values["actor_label"] = cleaned["actor"]
    target = (cleaned.get("object_id") or "").strip()
    if target:
        try:
            values["object_ids"] = (str(uuid.UUID(target)),)
        except ValueError:
            if audit_selectors.SHORT_ID.match(target.lower()):
                values["object_prefix"] = target.lower()
            else:
                named = _objects_named(actor, target)
                values["object_ids"] = named or (target,)
    tz = timezone.get_current_timezone()
    if cleaned.get("date_from"):
        values["since"] = datetime.datetime.combine(cleaned["date_from"], datetime.time.min, tzinfo=tz)
    if cleaned.get("date_to"):
        end = datetime.datetime.combine(cleaned["date_to"], datetime.time.min, tzinfo=tz)
        values["until"] = end + datetime.timedelta(days=1)
    return audit_selectors.EventFilters(nothing=nothing, with_case_events=True, **values)


def audit_events_filtered(actor: Actor, cleaned: dict):
    """The visible events matching the form's values (``cleaned``; ``None``: an invalid form, no event)."""
    if cleaned is None:
        return audit_selectors.events_filtered(actor, audit_selectors.EventFilters(nothing=True))
    return audit_selectors.events_filtered(actor, audit_filters(actor, cleaned))


def audit_object_references(actor: Actor, events) -> dict[str, str]:
    """object id → reference, for the cases and referrals of the actor's institution among ``events``
    (two queries per page; another institution's objects keep their short id: no reference leaks)."""
    ids = {e.object_id for e in events if e.object_type in ("case", "referral") and e.object_id}
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue
    found = worklists.references_of(actor, valid)
    return {str(pk): reference for pk, reference in found.items()}


def case_access_log(actor: Actor, case, limit: int = 100) -> list:
    """Who did what with this case and its referrals, newest first ("who accessed this case")."""
    return audit_selectors.case_access_log(actor, case.pk, limit)
