"""Who may use which page: the request's actor, role checks, and service errors turned into UI messages."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from accounts.actor import Actor, actor_from_request
from accounts.choices import Role, Scope
from plumbing.problems import ProblemError


def web_actor(request) -> Actor:
    """The signed-in staff member as an actor (the middleware already enforced sign-in and 2FA)."""
    actor = actor_from_request(request)
    if actor is None:
        raise PermissionDenied
    return actor


def actor_required(*, roles: tuple[str, ...] | None = None, scope: str | None = None):
    """A view for staff of an institution; ``roles``/``scope`` narrow it (403 otherwise).

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
            if roles is not None and actor.role not in roles:
                raise PermissionDenied
            if scope is not None and not actor.has_scope(scope):
                raise PermissionDenied
            request.actor = actor
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


caseworker_required = actor_required(scope=Scope.REFERRALS_WRITE)
supervisor_required = actor_required(roles=(Role.SUPERVISOR,))
auditor_required = actor_required(scope=Scope.AUDIT_READ)
admin_required = actor_required(roles=(Role.ADMIN,))


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
        return _("Please correct the data and try again.")
    if slug == "case-erased":
        return _("The personal data of this case was erased: it can no longer be changed or noted.")
    if slug == "precondition-failed":
        return _("The referral changed meanwhile. Please review it again.")
    return _("The action could not be completed.")


def report_problem(request, exc: ProblemError) -> None:
    """Show a service error; a 404 stays a 404 (no existence leak)."""
    if getattr(exc, "status_code", None) == 404:
        raise Http404
    messages.error(request, problem_message(exc))
