"""A caseworker's working day: the start page's queues, the referral list with filters, my cases,
taking and assigning inbound referrals, and the printable referral sheet.

Every list with people's names reads through ``referrals.reads`` (permission, consent projection and the
audit of the list happen there); every write goes through ``referrals.services``.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import directory
from plumbing.problems import ProblemError
from referrals import policy, reads, services, worklists
from referrals.choices import AWAITING_ANSWER_STATUSES, IN_SERVICE_STATUSES, Status
from referrals.errors import Forbidden, NotVisible, WrongSide

from .. import referral_lists as lists
from ..access import actor_required, caseworker_required, report_problem
from ..presentation import subject_rows


def _with_time_left(rows):
    now = timezone.now()
    for row in rows:
        row.referral.time_left = worklists.time_left(row.referral, now)
    return rows


def _first(queryset, size: int = lists.START_LIST_SIZE):
    """The first ``size`` items and whether there are more (one query: ``size + 1`` rows)."""
    items = list(queryset[: size + 1])
    return items[:size], len(items) > size


@never_cache
@actor_required()
def home(request):
    """The start page: the team queue, what awaits an answer, what is in my hands, what we sent, my
    cases — the first items of each, with "see all" to the paginated list."""
    actor = request.actor
    if not policy.may_refer(actor):
        return redirect("web:manage-users")  # the institution's admins work on its staff and clients
    queue, more_queue = _first(worklists.team_queue(actor))
    awaiting, more_awaiting = _first(
        worklists.filtered(actor, {"direction": "inbound", "status": AWAITING_ANSWER_STATUSES})
    )
    assigned, more_assigned = _first(worklists.filtered(actor, {"direction": "inbound", "assignee": "me"}))
    outbound, more_outbound = _first(worklists.filtered(actor, {"direction": "outbound"}))
    cases, more_cases = _first(worklists.my_cases(actor))
    # One read event per list that shows people (the ids shown, never the values).
    context = {
        "queue": _with_time_left(reads.referral_rows_read(actor, queue, list_name="home.team_queue")),
        "more_queue": more_queue,
        "awaiting": _with_time_left(reads.referral_rows_read(actor, awaiting, list_name="home.awaiting")),
        "more_awaiting": more_awaiting,
        "assigned": _with_time_left(reads.referral_rows_read(actor, assigned, list_name="home.assigned")),
        "more_assigned": more_assigned,
        "outbound": _with_time_left(reads.referral_rows_read(actor, outbound, list_name="home.outbound")),
        "more_outbound": more_outbound,
        "cases": reads.case_rows_read(actor, cases, list_name="home.my_cases"),
        "more_cases": more_cases,
        "can_take": policy.takes_referrals(actor),
        "office": actor.user.office if actor.user.office_id else None,
    }
    return render(request, "web/home.html", context)


@never_cache
@caseworker_required
@require_GET
def referral_list(request):
    """``/referrals/`` (contract §6.5): filters direction, status, q (reference), assignee, urgency,
    overdue; the overdue and most urgent first; paginated; the list read is recorded."""
    actor = request.actor
    form = lists.ReferralFilterForm(request.GET or None, institution=actor.institution)
    status = 200
    if not form.is_bound:
        filters = {}
    elif form.is_valid():
        filters = form.cleaned_data
    else:
        filters, status = None, 400
    queryset = worklists.filtered(actor, filters) if filters is not None else worklists.nothing(actor)
    page = Paginator(queryset, lists.PAGE_SIZE).get_page(request.GET.get("page"))
    rows = _with_time_left(reads.referral_rows_read(actor, page.object_list, list_name="referrals"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        "filtered": bool(filters),
        "can_take": policy.takes_referrals(actor),
        "status_options": _status_options(request.GET.get("status", "")),
        "status_value": request.GET.get("status", ""),
        "offices": worklists.offices_supervised(actor),
        "office_value": request.GET.get("office", ""),
    }
    return render(request, "web/referral_list.html", context, status=status)


@never_cache
@caseworker_required
@require_GET
def case_list(request):
    """Every case I own or collaborate on, newest first, paginated, with the person's name (audited)."""
    actor = request.actor
    queryset = worklists.my_cases(actor)
    page = Paginator(queryset, lists.PAGE_SIZE).get_page(request.GET.get("page"))
    rows = reads.case_rows_read(actor, page.object_list, list_name="my_cases")
    return render(request, "web/case_list.html", {"page": page, "rows": rows})


def _status_options(current: str) -> list[tuple[str, str]]:
    """The status picker: any, the two working groups, each status; an other combination from the URL
    (``status=a,b``) is kept as one more option so that the form shows what is applied."""
    options = [
        ("", _("Any status")),
        (",".join(AWAITING_ANSWER_STATUSES), _("Awaiting an answer")),
        (",".join(IN_SERVICE_STATUSES), _("In service")),
        *[(s.value, str(s.label)) for s in Status],
    ]
    if current and current not in {value for value, _label in options}:
        codes = [c for c in current.split(",") if c in Status.values]
        if codes:
            options.append((current, ", ".join(str(Status(c).label) for c in codes)))
    return options


def _back(request, referral_id):
    """Back where the button was (a list, the start page or the referral), never to another site."""
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect("web:referral-detail", referral_id=referral_id)


@caseworker_required
@require_POST
def referral_take(request, referral_id):
    """A caseworker takes an unassigned inbound referral from the team queue."""
    actor = request.actor
    try:
        referral = services.referral_take(actor=actor, referral_id=referral_id)
    except ProblemError as exc:
        if exc.slug == "already-yours":
            messages.info(request, _("You already hold this referral."))
        elif exc.slug == "already-assigned":
            messages.error(request, _("Someone else took this referral meanwhile."))
        else:
            report_problem(request, exc)
    else:
        messages.success(
            request, _("Referral %(reference)s is now yours.") % {"reference": referral.reference}
        )
    return _back(request, referral_id)


@actor_required(allowed=policy.assigns_referrals)
@require_POST
def referral_assign(request, referral_id):
    """A supervisor assigns (or reassigns) an inbound referral to a caseworker of the institution."""
    actor = request.actor
    assignee = worklists.colleague(actor, _uuid_or_none(request.POST.get("assignee")))
    if assignee is None:
        messages.error(request, _("Choose a caseworker."))
        return _back(request, referral_id)
    try:
        referral = services.referral_assign(actor=actor, referral_id=referral_id, assignee=assignee)
    except ProblemError as exc:
        if exc.slug == "validation-error":
            messages.error(request, _("Choose an active caseworker of your institution."))
        else:
            report_problem(request, exc)
    else:
        messages.success(
            request,
            _("Referral %(reference)s assigned to %(username)s.")
            % {"reference": referral.reference, "username": assignee.username},
        )
    return _back(request, referral_id)


@caseworker_required
@require_POST
def referral_route(request, referral_id):
    """The receiver moves a referral to another office of its institution, or to its national intake
    (``services.referral_route``: who may, the office, the status are the core's to decide)."""
    actor = request.actor
    code = (request.POST.get("to_office") or "").strip()
    if not code:
        messages.error(request, _("Choose an office, or the national intake."))
        return redirect("web:referral-detail", referral_id=referral_id)
    target = None if code == worklists.NATIONAL_INTAKE else code[:16]
    try:
        referral = services.referral_route(actor=actor, referral_id=referral_id, to_office=target)
    except ProblemError as exc:
        report_problem(request, exc)
        return redirect("web:referral-detail", referral_id=referral_id)
    if referral.to_office_id:
        text = _("Referral %(reference)s is now with the office %(office)s.") % {
            "reference": referral.reference,
            "office": referral.to_office.name,
        }
    else:
        text = _("Referral %(reference)s is now at the national intake.") % {"reference": referral.reference}
    messages.success(request, text)
    if not policy.works_for_office(actor.user, referral.to_office_id):
        # Routed away from the router's own office: they no longer need to know it (its page is a 404).
        return redirect("web:home")
    return redirect("web:referral-detail", referral_id=referral_id)


def _uuid_or_none(value):
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@never_cache
@caseworker_required
@require_GET
def referral_print(request, referral_id):
    """The printable sheet for an institution not on the system: exactly the consented data."""
    actor = request.actor
    try:
        sheet = reads.referral_sheet_read(actor=actor, referral_id=referral_id)
    except NotVisible:
        raise Http404 from None
    except WrongSide:
        messages.error(
            request,
            _(
                "Only the sending institution prints a referral's sheet: the person agreed to share their "
                "data with your institution, not to have it passed on."
            ),
        )
        return redirect("web:referral-detail", referral_id=referral_id)
    except Forbidden:
        messages.error(request, _("This referral's personal data can no longer be printed."))
        return redirect("web:referral-detail", referral_id=referral_id)
    referral = sheet.referral
    context = {
        "sheet": sheet,
        "referral": referral,
        "subject_rows": subject_rows(sheet.subject) if sheet.subject else [],
        "sender": referral.created_by,
        "printed_by": actor.user,
        "now": timezone.now(),
    }
    return render(request, "web/referral_print.html", context)


def detail_extras(actor, view) -> dict:
    """What the referral page adds for the working day: take / assign forms and the print link."""
    referral = view.referral
    extras = {
        "can_take": policy.may_take(actor, referral),
        "can_assign": policy.may_assign(actor, referral),
        "can_print": policy.may_print(actor, referral),
    }
    if extras["can_assign"]:
        extras["caseworkers"] = lists.assignable_caseworkers(actor, referral)
    extras["route_offices"] = None  # no route form (an institution without offices has nowhere to route)
    if policy.may_route(actor, referral):
        offices = list(directory.offices(institution=referral.to_institution.code).order_by("name"))
        extras["route_offices"] = offices or None
    return extras
