"""Who may do what with accounts: one predicate per decision (contract §7.1).

The account services (``accounts.services``, ``notifications.services`` for webhooks) raise on these; the
doors — web pages, the Django admin, management commands, the partner API — *ask* them to decide what to
show, and never decide otherwise. A new rule about accounts is one line here.

Who manages an institution's accounts:

- an admin of that institution (a signed-in user with the admin role; API clients never manage staff or
  clients, only webhooks with the ``webhooks:manage`` scope);
- an operator: a superuser in the Django admin, acting on the institution concerned;
- a system actor: a management command run by whoever runs the installation, acting on the institution
  concerned.

Whoever it is, the target must belong to the actor's institution (an operator's and a system actor's
institution *is* the institution concerned), and nobody moves a user to another institution (the database
refuses it too: ``accounts/migrations/0003_user_institution_fixed.py``).
"""

from __future__ import annotations

from .actor import Actor
from .choices import Role, Scope

#: Wrong second-factor codes in one sign-in before the session is closed (each device also throttles).
MAX_OTP_FAILURES = 5


def _trusted(actor: Actor) -> bool:
    """A system actor, or a superuser acting through the operators' Django admin."""
    if actor.system:
        return True
    return actor.operator and actor.user is not None and actor.user.is_superuser


def _institution_admin(actor: Actor) -> bool:
    return _trusted(actor) or (
        actor.user is not None and actor.user.is_active and actor.user.role == Role.ADMIN
    )


def _same_institution(actor: Actor, institution_id) -> bool:
    """The target belongs to the actor's institution (an operator's may be none: a superuser's account)."""
    own = actor.institution.pk if actor.institution is not None else None
    return institution_id == own and (own is not None or _trusted(actor))


def _targets_own_institution(actor: Actor, target=None, institution=None) -> bool:
    """The target (a row with ``institution_id``, or else ``institution``) is of the actor's institution;
    neither given: the question is whether the actor may at all (already answered by the caller)."""
    if target is not None:
        return _same_institution(actor, target.institution_id)
    if institution is not None:
        return _same_institution(actor, institution.pk)
    return True


def may_manage_staff(actor: Actor, user=None) -> bool:
    """Create, change, (de)activate staff or reset their second factor — of the actor's institution only.

    Without ``user``: whether the actor manages staff at all (the door shows the staff pages)."""
    if not _institution_admin(actor):
        return False
    return _targets_own_institution(actor, user)


def may_change_role(actor: Actor, user, role: str) -> bool:
    """As ``may_manage_staff``; and nobody changes their own role (an admin who demoted themselves would
    lose the staff pages at once and might leave nobody to manage the institution)."""
    if not may_manage_staff(actor, user):
        return False
    return not (_is_self(actor, user) and str(role) != user.role)


def may_deactivate(actor: Actor, user) -> bool:
    """As ``may_manage_staff``; and nobody deactivates their own account."""
    return may_manage_staff(actor, user) and not _is_self(actor, user)


def may_reset_second_factor(actor: Actor, user) -> bool:
    return may_manage_staff(actor, user)


def may_manage_api_clients(actor: Actor, client=None, *, institution=None) -> bool:
    """Create or revoke API clients of the actor's institution (``client`` or ``institution``: the target)."""
    if not _institution_admin(actor):
        return False
    return _targets_own_institution(actor, client, institution)


def may_manage_webhooks(actor: Actor, endpoint=None, *, institution=None) -> bool:
    """Subscribe, remove or replay webhooks of the actor's institution: its admins and its API clients with
    ``webhooks:manage`` (the admin role carries that scope), an operator, a system actor."""
    if not (_trusted(actor) or actor.has_scope(Scope.WEBHOOKS_MANAGE)):
        return False
    return _targets_own_institution(actor, endpoint, institution)


def may_manage_offices(actor: Actor, office=None, *, institution=None) -> bool:
    """Create, change, pause or resume offices (contract §7.2) — of the actor's institution only: its admins,
    an operator, a system actor (``office`` or ``institution``: the target; none: whether at all)."""
    if not _institution_admin(actor):
        return False
    return _targets_own_institution(actor, office, institution)


def second_factor_locked(failures: int) -> bool:
    """After this many wrong codes in one sign-in, the session is closed (sign in again)."""
    return failures >= MAX_OTP_FAILURES


def _is_self(actor: Actor, user) -> bool:
    return actor.user is not None and user is not None and actor.user.pk == user.pk
