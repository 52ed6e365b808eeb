"""What every page's header needs: the links the user's decisions allow and the unread notifications badge."""

from __future__ import annotations

from django.conf import settings

from accounts.actor import actor_from_request
from accounts.models import User
from notifications.selectors import unread_count
from referrals import policy

from .access import admin_menu, offices_menu
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
    actor = actor_from_request(request) if user.institution_id else None
    return {
        "nav": Navigation(
            user,
            # Each entry is a decision of the core's policy, asked for this actor (none without one).
            takes_referrals=actor is not None and policy.takes_referrals(actor),
            can_supervise=actor is not None and policy.may_supervise(actor),
            can_view_statistics=actor is not None and policy.may_view_statistics(actor),
            is_admin=actor is not None and admin_menu(actor),
            can_manage_offices=actor is not None and offices_menu(actor),
            can_refer=actor is not None and policy.may_refer(actor),
            can_audit=actor is not None and policy.may_audit(actor),
            institution=user.institution if user.institution_id else None,
            is_superuser=user.is_superuser,
            federated=bool(getattr(settings, "NODE_URL", "")),  # this node has peers' page (§7.4)
        )
    }
