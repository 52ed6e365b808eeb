"""Linking two cases as the same person, and undoing a link (supervisors): POST only, through services."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from matching import services as matching_services
from plumbing.problems import ProblemError
from referrals import policy, reads
from referrals.errors import NotVisible

from ..access import actor_required, caseworker_required, report_problem


@caseworker_required
@require_POST
def case_link(request, case_id):
    """Record that this case and ``other`` are the same person (both stay; nothing is merged)."""
    actor = request.actor
    try:
        other_id = uuid.UUID(request.POST.get("other", ""))
        case = reads.fetch_case(actor, case_id)
        other = reads.fetch_case(actor, other_id)
    except (ValueError, NotVisible):
        raise Http404 from None
    try:
        matching_services.case_link(actor=actor, case=case, other=other)
    except ProblemError as exc:
        report_problem(request, exc)
    else:
        messages.success(
            request,
            _("Cases %(a)s and %(b)s are now linked as the same person.")
            % {"a": case.reference, "b": other.reference},
        )
    return redirect("web:case-detail", case_id=case.pk)


@actor_required(allowed=policy.may_unlink_cases)
@require_POST
def case_unlink(request, case_id, link_id):
    """Undo a link between two cases (supervisors only)."""
    actor = request.actor
    try:
        matching_services.case_unlink(actor=actor, link_id=link_id)
    except ProblemError as exc:
        report_problem(request, exc)
    else:
        messages.success(request, _("The link between the cases was undone."))
    return redirect("web:case-detail", case_id=case_id)
