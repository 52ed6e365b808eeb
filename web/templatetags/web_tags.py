"""Template filters for codes and durations (translated labels, never raw codes for people to decode)."""

from __future__ import annotations

import datetime

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from referrals.choices import DataCategory, Service, Status, Urgency

from .. import names
from ..presentation import (
    AUDIT_ACTION_LABELS,
    AUDIT_OBJECT_TYPE_LABELS,
    AUDIT_OUTCOME_LABELS,
    EVENT_LABELS,
    NOTIFICATION_LABELS,
    notification_text,
)

register = template.Library()


@register.filter
def status_label(code: str) -> str:
    return str(Status(code).label) if code in Status.values else code


@register.filter
def status_class(code: str) -> str:
    return "status status-" + (code or "none")


@register.filter
def urgency_label(code: str) -> str:
    return str(Urgency(code).label) if code in Urgency.values else code


@register.filter
def service_labels(codes) -> str:
    return ", ".join(str(Service(c).label) if c in Service.values else c for c in codes or [])


@register.filter
def category_label(code: str) -> str:
    return str(DataCategory(code).label) if code in DataCategory.values else code


@register.filter
def event_label(action: str) -> str:
    return str(EVENT_LABELS.get(action, action))


@register.filter
def notification_label(event_type: str) -> str:
    return str(NOTIFICATION_LABELS.get(event_type, event_type))


@register.filter
def notification_line(notification) -> str:
    """The event a notification announces, from its own data (``accept`` → "Referral accepted")."""
    return notification_text(notification.event_type, notification.data)


@register.filter
def country_name(code) -> str:
    return names.country_name(code) or "—"


@register.filter
def language_names(codes) -> str:
    return names.language_names(codes) or "—"


@register.filter
def audit_label(action: str) -> str:
    label = AUDIT_ACTION_LABELS.get(action)
    return str(label) if label else action


@register.filter
def audit_outcome(outcome: str) -> str:
    label = AUDIT_OUTCOME_LABELS.get(outcome)
    return str(label) if label else outcome


@register.filter
def audit_object_type(object_type: str) -> str:
    label = AUDIT_OBJECT_TYPE_LABELS.get(object_type)
    return str(label) if label else object_type


def _span(delta: datetime.timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days} + (
            " " + ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours} if hours else ""
        )
    if hours:
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours} + (
            " " + ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes} if minutes else ""
        )
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


@register.filter
def duration(delta) -> str:
    """A plain duration ("2 days 3 hours")."""
    if delta is None:
        return "—"
    return _span(delta)


@register.filter
def time_left(delta) -> str:
    """Time before a deadline, or how late it is."""
    if delta is None:
        return "—"
    if delta.total_seconds() < 0:
        return _("overdue by %(span)s") % {"span": _span(delta)}
    return _("%(span)s left") % {"span": _span(delta)}


@register.filter
def is_overdue(delta) -> bool:
    return delta is not None and delta.total_seconds() < 0


@register.filter
def short_id(value) -> str:
    return str(value)[:8] if value else ""


@register.filter
def minutes(delta) -> int:
    return int(delta.total_seconds() // 60) if delta else 0


@register.filter
def province_name(code) -> str:
    """``PA-5`` → ``Darién`` (in the page's language); none → "—"."""
    return names.province_name(code) or "—"


@register.filter
def service_list(codes) -> list[str]:
    """Each service's name, in the order given (an office's services as a list)."""
    return [str(Service(c).label) if c in Service.values else c for c in codes or []]


@register.filter
def office_accepting(office) -> bool:
    """Whether the office accepts referrals now (``Office.is_accepting``: a pause past its date is over)."""
    return office.is_accepting()
