"""What every page's header needs: the user's role links and the unread notifications badge."""

from __future__ import annotations

from accounts.choices import Role
from accounts.models import User
from notifications.selectors import unread_count

from .middleware import second_factor_pending


def unread_notifications(user) -> int:
    """The badge count."""
    return unread_count(user)


class Navigation(dict):
    """The header's data; the unread count is queried once, and only by a page that shows it."""

    def __init__(self, user, **values):
        super().__init__(**values)
        self._user = user

    def __missing__(self, key):
        if key != "unread":
            raise KeyError(key)
        self[key] = unread_notifications(self._user)
        return self[key]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or second_factor_pending(user):
        return {"nav": None}
    if not isinstance(user, User):
        return {"nav": None}  # an API client (DRF's request.user under /api/): no staff navigation
    role = getattr(user, "role", "")
    has_institution = bool(getattr(user, "institution_id", None))
    return {
        "nav": Navigation(
            user,
            is_caseworker=has_institution and role == Role.CASEWORKER,
            is_supervisor=has_institution and role == Role.SUPERVISOR,
            is_admin=has_institution and role == Role.ADMIN,
            can_refer=has_institution and role in (Role.CASEWORKER, Role.SUPERVISOR),
            can_audit=has_institution and role in (Role.SUPERVISOR, Role.ADMIN),
            institution=user.institution if has_institution else None,
            is_superuser=user.is_superuser,
        )
    }
