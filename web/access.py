"""Who may use which page: the request's actor, role checks, and service errors turned into UI messages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from accounts import policy as account_policy
from accounts.actor import Actor, actor_from_request
from plumbing.problems import ProblemError
from referrals import policy


def web_actor(request) -> Actor:
    """The signed-in staff member as an actor (the middleware already enforced sign-in and 2FA)."""
    actor = actor_from_request(request)
    if actor is None:
        raise PermissionDenied
    return actor


def actor_required(*, allowed: Callable[[Actor], bool] | None = None):
    """A view for staff of an institution; ``allowed`` — a predicate of the core's policy — narrows it
    (403 otherwise). The door asks; it never compares roles itself (tests/core/test_door_lint.py).

    A superuser without an institution has no actor: they are sent to the Django admin.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            actor = actor_from_request(request)
            if actor is None:
                if request.user.is_superuser:
                    return redirect("admin:index")
                raise PermissionDenied
            if allowed is not None and not allowed(actor):
                raise PermissionDenied
            request.actor = actor
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def offices_menu(actor: Actor) -> bool:
    """The institution's offices page (create, edit, pause, resume): ``accounts.policy``'s verdict."""
    return account_policy.may_manage_offices(actor, institution=actor.institution)


def admin_menu(actor: Actor) -> bool:
    """The institution's admin pages (staff, API clients, webhooks) and their menu entries: the account
    policy's verdict (``accounts.policy``), asked here once for the pages and the menu."""
    return account_policy.may_manage_staff(actor)


#: The caseworker's pages and writes (cases, referrals, lists, search): ``policy.may_refer``.
caseworker_required = actor_required(allowed=policy.may_refer)
#: The team's pages (workload, response times).
supervisor_required = actor_required(allowed=policy.may_supervise)
statistics_required = actor_required(allowed=policy.may_view_statistics)
auditor_required = actor_required(allowed=policy.may_audit)
admin_required = actor_required(allowed=admin_menu)
offices_admin_required = actor_required(allowed=offices_menu)


def problem_message(exc: ProblemError) -> str:
    """A translated, non-technical message for a service error (never echoing input)."""
    slug = getattr(exc, "slug", "")
    if slug == "invalid-transition":
        return _("This action is not possible in the referral's current status. The page was refreshed.")
    if slug == "consent-required":
        return _("The referral cannot be sent without the person's active consent.")
    if slug == "permission-denied":
        return _("You are not allowed to do this.")
    if slug == "validation-error":
        errors = getattr(exc, "errors", None) or {}
        if "reason" in errors:
            return _("A reason is required for this action.")
        if "outcome" in errors:
            return _("An outcome is required to complete the referral.")
        if "to_office" in errors:
            return _("Choose an office of the receiving institution.")
        return _("Please correct the data and try again.")
    if slug == "case-erased":
        return _("The personal data of this case was erased: it can no longer be changed or noted.")
    if slug == "office-not-accepting":
        return _("This office is paused and does not accept referrals now: choose another office.")
    if slug == "precondition-failed":
        return _("The referral changed meanwhile. Please review it again.")
    if slug == "peer-unavailable":
        return _(
            "The sending institution's system, which decides this referral, cannot be reached now. "
            "Nothing was changed: please try again later."
        )
    return _("The action could not be completed.")


def report_problem(request, exc: ProblemError) -> None:
    """Show a service error; a 404 stays a 404 (no existence leak)."""
    if getattr(exc, "status_code", None) == 404:
        raise Http404
    messages.error(request, problem_message(exc))
