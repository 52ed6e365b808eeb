"""DRF permissions: an affiliated actor, then the scope of the operation (contract §3 order)."""

from rest_framework import exceptions, permissions

from .actor import actor_from_request, why_no_actor

#: The 403's message by the reason a signed-in request has no actor.
NO_ACTOR_MESSAGES = {
    "second-factor-pending": "The sign-in is not finished: enter the code of the authenticator app first.",
    "inactive": "This account is deactivated.",
    "no-institution": "This account does not belong to an institution.",
}


class IsActor(permissions.BasePermission):
    """A user of an institution or a valid API client; anonymous → 401."""

    def has_permission(self, request, view):
        if request.auth is None and not (request.user and getattr(request.user, "is_authenticated", False)):
            raise exceptions.NotAuthenticated()
        if actor_from_request(request) is None:
            raise exceptions.PermissionDenied(NO_ACTOR_MESSAGES[why_no_actor(request)])
        return True


class HasScope(IsActor):
    """Requires the view's ``read_scope`` for safe methods and ``write_scope`` otherwise."""

    def has_permission(self, request, view):
        super().has_permission(request, view)
        actor = actor_from_request(request)
        if request.method in permissions.SAFE_METHODS:
            scope = getattr(view, "read_scope", None)
        else:
            scope = getattr(view, "write_scope", None)
        if scope and not actor.has_scope(scope):
            raise exceptions.PermissionDenied(f"This token lacks the scope {scope}.")
        return True
