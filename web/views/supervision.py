"""Supervisors' pages: team workload, response times (with a server-drawn chart), and the audit log."""

from __future__ import annotations

import datetime

from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from audit import selectors as audit_selectors
from audit.checkpoints import as_served, witnesses
from audit.exports import export_csv
from referrals import reads, worklists

from .. import referral_lists, selectors
from ..access import auditor_required, supervisor_required
from ..charts import horizontal_bars
from ..forms import AuditFilterForm
from ..presentation import AUDIT_ACTION_LABELS

AUDIT_PAGE_SIZE = 50
STATUS_CSS = {
    "requested": "bar-waiting",
    "received": "bar-waiting",
    "accepted": "bar-active",
    "in-progress": "bar-active",
    "on-hold": "bar-active",
    "completed": "bar-done",
    "failed": "bar-bad",
    "rejected": "bar-bad",
    "cancelled": "bar-muted",
    "entered-in-error": "bar-muted",
    "draft": "bar-muted",
}


def _office_choice(request) -> tuple[list, str, object, bool]:
    """The supervision pages' office filter: the offices the reader may narrow to, the value asked
    (``CODE``, ``none`` or empty), what it selects and whether it is valid (``worklists.office_choice``)."""
    value = request.GET.get("office", "")
    office = worklists.office_choice(request.actor, value)
    if office is worklists.UNKNOWN_OFFICE:
        return [], value, None, False
    return worklists.offices_supervised(request.actor), value, office, True


@supervisor_required
@require_GET
def workload(request):
    """Open work per caseworker, and the team queue (received, nobody assigned) to assign from — of the
    supervisor's office (an office's supervisor), or of every office with an office filter (national)."""
    actor = request.actor
    offices, office_value, office, valid = _office_choice(request)
    if not valid:
        return HttpResponseBadRequest(_("Unknown office of your institution."), content_type="text/plain")
    rows, queue = worklists.team_workload(actor, office=office)
    unassigned = Paginator(worklists.team_queue(actor, office=office), referral_lists.PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    queue_rows = reads.referral_rows_read(actor, unassigned.object_list, list_name="workload.team_queue")
    context = {
        "rows": rows,
        "queue": queue,
        "unassigned": unassigned,
        "queue_rows": queue_rows,
        "caseworkers": worklists.caseworkers(actor, office=office),
        "offices": offices,
        "office_value": office_value,
        "office": office if office not in (None, worklists.NATIONAL_INTAKE) else None,
        "query": f"office={office_value}" if office_value else "",
    }
    return render(request, "web/supervision/workload.html", context)


@supervisor_required
@require_GET
def response_times(request):
    direction = "outbound" if request.GET.get("direction") == "outbound" else "inbound"
    offices, office_value, office, valid = _office_choice(request)
    if not valid:
        return HttpResponseBadRequest(_("Unknown office of your institution."), content_type="text/plain")
    stats = worklists.response_times(request.actor, direction=direction, office=office)
    status_items = [
        (label, n, STATUS_CSS.get(code, "")) for code, label, n in stats.by_status if n or code != "draft"
    ]
    context = {
        "stats": stats,
        "direction": direction,
        "status_chart": horizontal_bars(status_items, title=_("Referrals by status")),
        "answer_chart": horizontal_bars(stats.buckets, title=_("Time to answer"), label_width=90),
        "now": timezone.now(),
        "offices": offices,
        "office_value": office_value,
        "office": office if office not in (None, worklists.NATIONAL_INTAKE) else None,
    }
    return render(request, "web/supervision/response_times.html", context)


def _audit_filters(request) -> tuple[AuditFilterForm, dict | None]:
    """The form and its filters; ``None`` when a filter is invalid (never the unfiltered log instead)."""
    form = AuditFilterForm(request.GET or None)
    if not form.is_bound:
        return form, {}
    return form, (form.cleaned_data if form.is_valid() else None)


@auditor_required
@require_GET
def audit_log(request):
    """The institution's audit log, newest first, with filters; the CSV export takes the same filters.

    Objects are shown by reference where the institution owns them; the latest signed checkpoint is shown
    with the way to download them all (API) and to verify them (``verify_audit --checkpoints``).
    """
    form, filters = _audit_filters(request)
    events = selectors.audit_events_filtered(request.actor, filters)
    page = _keyset_page(events, request.GET)
    references = selectors.audit_object_references(request.actor, page["events"])
    for event in page["events"]:
        event.object_reference = references.get(event.object_id, "")
    query = request.GET.copy()
    for name in ("page", "before", "after"):
        query.pop(name, None)
    checkpoint = _latest_checkpoint()
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "action_labels": AUDIT_ACTION_LABELS,
        # The labelled actions (a DISTINCT over the institution's events would read the whole log), by
        # their label in the reader's language: the filter finds an action by its label.
        "known_actions": sorted({str(label) for label in AUDIT_ACTION_LABELS.values()}, key=str.casefold),
        "checkpoint": checkpoint,
        "witnesses": witnesses(checkpoint) if checkpoint else [],
    }
    return render(request, "web/supervision/audit_log.html", context)


def _position(raw) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) <= 18 else None


def _keyset_page(events, params) -> dict:
    """Newest first, ``AUDIT_PAGE_SIZE`` at a time, positioned by sequence (``before``/``after``) rather
    than by page number: no COUNT and no OFFSET, so a page costs the same at ten million events."""
    before, after = _position(params.get("before")), _position(params.get("after"))
    if after is not None:
        rows = list(events.filter(sequence__gt=after).order_by("sequence")[: AUDIT_PAGE_SIZE + 1])
        has_newer = len(rows) > AUDIT_PAGE_SIZE
        rows = list(reversed(rows[:AUDIT_PAGE_SIZE]))
        has_older = bool(rows) and events.filter(sequence__lt=rows[-1].sequence).exists()
    else:
        if before is not None:
            events = events.filter(sequence__lt=before)
        rows = list(events.order_by("-sequence")[: AUDIT_PAGE_SIZE + 1])
        has_older = len(rows) > AUDIT_PAGE_SIZE
        rows = rows[:AUDIT_PAGE_SIZE]
        has_newer = before is not None and bool(rows)
    return {
        "events": rows,
        "older": rows[-1].sequence if rows and has_older else None,
        "newer": rows[0].sequence if rows and has_newer else None,
    }


def _latest_checkpoint() -> dict | None:
    checkpoint = audit_selectors.latest_checkpoint()
    return as_served(checkpoint) if checkpoint is not None else None


def _export_filters(filters: dict) -> dict:
    """The form's filters for the export's own audit event (codes, usernames, dates, ids, references)."""
    return {k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in filters.items() if v}


@auditor_required
@require_GET
def audit_export(request):
    """The filtered log as CSV (oldest first), through the one audit export; the export itself is recorded."""
    actor = request.actor
    _form, filters = _audit_filters(request)
    if filters is None:
        return HttpResponseBadRequest(
            _("Correct the filters of the audit log first."), content_type="text/plain"
        )
    events = selectors.audit_events_filtered(actor, filters)
    return export_csv(actor=actor, events=events, filters=_export_filters(filters))
