"""Who may do what with cases and referrals: one predicate per decision, asked by every door.

Each decision is written once here. A ``may_*`` predicate answers a door that decides what to show (a
button, a link, a menu entry); the matching ``require_*`` raises the problem the services answer with
(``referrals.errors``: 403 ``permission-denied``, 409 ``invalid-transition`` …), in the contract's order.
The services call the ``require_*``; the doors never re-derive a rule from roles, statuses or grants —
``tests/core/test_door_lint.py`` refuses role comparisons in a door, and
``tests/core/test_door_parity.py`` checks that each decision answers alike through every door.

The lifecycle's conditions (the void right, consent for ``send``) are the **guards** of its table
(``referrals.lifecycle``); this module applies them. Account decisions (who manages staff, clients and
webhooks) are ``accounts``' own.
"""

from __future__ import annotations

from accounts.actor import Actor
from accounts.choices import Role, Scope
from accounts.models import User, works_for_office_q
from plumbing.problems import ProblemError

from .choices import ASSIGNABLE_STATUSES, TERMINAL_STATUSES, Side, Status
from .errors import CaseErased, Forbidden, InvalidTransition, WrongSide
from .lifecycle import (
    CONSENT_GIVEN,
    TRANSITIONS,
    VOID_RIGHT,
    Guard,
    Transition,
    allowed_actions,
    consent_given,
    may_void,
)
from .models import Referral
from .selectors import has_referral_perm, receiver_sees_personal, side_of

__all__ = [
    "CONSENT_GIVEN",
    "VOID_RIGHT",
    "Guard",
    "actions_available",
    "assigns_referrals",
    "authorize_transition",
    "consent_given",
    "may_assign",
    "may_audit",
    "may_note",
    "may_print",
    "may_refer",
    "may_refer_case",
    "may_route",
    "may_see_case",
    "may_send",
    "may_supervise",
    "may_take",
    "may_transition",
    "may_unlink_cases",
    "may_view_statistics",
    "may_void",
    "may_withdraw_consent",
    "takes_referrals",
    "works_for_office",
]


def _verdict(check, *args, **kwargs) -> bool:
    """A ``require_*`` as a ``may_*``: true when it raises nothing."""
    try:
        check(*args, **kwargs)
    except ProblemError:
        return False
    return True


# --- what an actor may do at all (menus, pages) ------------------------------------------------------


def may_refer(actor: Actor) -> bool:
    """Open cases, refer them and act on referrals: ``referrals:write`` (caseworkers, supervisors, API
    clients holding it) — the web's "caseworker pages"."""
    return actor.has_scope(Scope.REFERRALS_WRITE)


def require_refer(actor: Actor) -> None:
    if not may_refer(actor):
        raise Forbidden(f"This account lacks the scope {Scope.REFERRALS_WRITE}.")


def require_refer_case(actor: Actor, case) -> None:
    """Refer a case: its own institution (403 otherwise), never once the person was erased (409)."""
    require_refer(actor)
    if case.institution_id != actor.institution.pk:
        raise WrongSide("Only the case's institution may refer it.")
    if case.is_erased:
        raise CaseErased()


def may_refer_case(actor: Actor, case) -> bool:
    return _verdict(require_refer_case, actor, case)


def may_audit(actor: Actor) -> bool:
    """Read the institution's audit log: ``audit:read`` (supervisors, admins, clients holding it)."""
    return actor.has_scope(Scope.AUDIT_READ)


def may_view_statistics(actor: Actor) -> bool:
    """Statistics (contract §6.4, §7.1): supervisors and admins, and API clients with ``statistics:read``
    — the roles hold the scope (``accounts.actor.ROLE_SCOPES``); caseworkers do not."""
    return actor.has_scope(Scope.STATISTICS_READ)


def require_view_statistics(actor: Actor) -> None:
    if not may_view_statistics(actor):
        raise Forbidden(f"This account lacks the scope {Scope.STATISTICS_READ}.")


def may_supervise(actor: Actor) -> bool:
    """The team's pages (workload, response times): the institution's supervisors."""
    return actor.is_supervisor


def may_unlink_cases(actor: Actor) -> bool:
    """Undo a link between two cases: supervisors only (a caseworker links, a supervisor unlinks)."""
    return actor.is_supervisor


def require_unlink_cases(actor: Actor) -> None:
    if not may_unlink_cases(actor):
        raise Forbidden("Only a supervisor may undo a link between cases.")


def takes_referrals(actor: Actor) -> bool:
    """A caseworker takes inbound referrals from the team queue (supervisors assign them instead)."""
    return actor.user is not None and actor.user.role == Role.CASEWORKER and may_refer(actor)


def assigns_referrals(actor: Actor) -> bool:
    """A supervisor assigns inbound referrals to the institution's caseworkers."""
    return actor.is_supervisor and may_refer(actor)


def works_for_office(user: User, office_id) -> bool:
    """Need to know inside an institution (contract §7.2): national staff (no office) work for every office
    and for the national intake; an office's staff for their office only (as a query:
    ``accounts.models.works_for_office_q``)."""
    return user.office_id is None or user.office_id == office_id


def may_be_assigned(user: User, actor: Actor, referral: Referral | None = None) -> bool:
    """Whom a supervisor may assign: an active caseworker of the actor's institution — who works for the
    referral's office (:func:`works_for_office`) when ``referral`` is given."""
    return (
        user.is_active
        and user.institution_id == actor.institution.pk
        and user.role == Role.CASEWORKER
        and (referral is None or works_for_office(user, referral.to_office_id))
    )


def assignable_users(actor: Actor, referral: Referral | None = None):
    """The users :func:`may_be_assigned` allows, by username (a supervisor's choices)."""
    users = User.objects.filter(institution=actor.institution, role=Role.CASEWORKER, is_active=True)
    if referral is not None:
        users = users.filter(works_for_office_q(referral.to_office_id))
    return users.order_by("username")


# --- the lifecycle -----------------------------------------------------------------------------------


def _receiver_may_act(actor: Actor, referral: Referral) -> bool:
    """The receiving institution still holds ``change_referral`` (revoked with its access)."""
    return has_referral_perm(actor, referral, "change_referral")


def _guards(transition: Transition, stage: str) -> tuple[Guard, ...]:
    return tuple(guard for guard in transition.guards if guard.stage == stage)


def authorize_transition(*, actor: Actor, referral: Referral, action: str) -> Transition:
    """The lifecycle's who-may checks for ``action`` on a visible referral, in the contract's order:
    the action is the other side's (403), or an actor guard fails (the void right: 403). Returns the
    transition. Doors may call it before reading a body (403 before 400); the service calls it."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise InvalidTransition(action, referral.status)
    if transition.side != side_of(actor, referral):
        raise WrongSide()
    for guard in _guards(transition, "actor"):
        if not guard.allows(actor, referral):
            raise guard.refusal(referral)
    return transition


def require_transition_state(*, actor: Actor, referral: Referral, transition: Transition) -> None:
    """After the body: the status (409), then the receiver's access to act (403)."""
    if referral.status not in transition.from_statuses:
        raise InvalidTransition(transition.action, referral.status)
    if transition.side == Side.RECEIVER and not _receiver_may_act(actor, referral):
        raise Forbidden("Your institution no longer has access to act on this referral.")


def require_transition_guards(*, actor: Actor, referral: Referral, transition: Transition) -> None:
    """Last (after ``If-Match``): the referral's guards (consent for ``send``: 409 ``consent-required``)."""
    for guard in _guards(transition, "referral"):
        if not guard.allows(actor, referral):
            raise guard.refusal(referral)


def require_transition(actor: Actor, referral: Referral, action: str) -> Transition:
    """Every check of ``action`` but the body and ``If-Match``, in the services' order."""
    if not may_refer(actor):
        raise Forbidden(f"This account lacks the scope {Scope.REFERRALS_WRITE}.")
    transition = authorize_transition(actor=actor, referral=referral, action=action)
    require_transition_state(actor=actor, referral=referral, transition=transition)
    require_transition_guards(actor=actor, referral=referral, transition=transition)
    return transition


def may_transition(actor: Actor, referral: Referral, action: str) -> bool:
    """Whether ``action`` would be accepted now (given a body it needs)."""
    return _verdict(require_transition, actor, referral, action)


def may_send(actor: Actor, referral: Referral) -> bool:
    """The sender sends a draft with the person's given, active consent."""
    return may_transition(actor, referral, "send")


def actions_available(*, actor: Actor, referral: Referral) -> list[str]:
    """The actions to offer ``actor`` now: the lifecycle's for its side and status, less what it lacks
    the right to (actor guards: void) or the access to (a receiver whose access was revoked). Referral
    guards (consent for ``send``) are not filtered here: the action is offered and refused with its
    reason (409 ``consent-required``), which tells the person what is missing."""
    if not may_refer(actor):
        return []
    side = side_of(actor, referral)
    if side == Side.RECEIVER and not _receiver_may_act(actor, referral):
        return []
    return [
        action
        for action in allowed_actions(referral.status, side)
        if all(guard.allows(actor, referral) for guard in _guards(TRANSITIONS[action], "actor"))
    ]


def may_route(actor: Actor, referral: Referral) -> bool:
    """Move a received referral to another office of the receiving institution (contract §7.2): the
    receiver, in any non-terminal status, with ``referrals:write``, supervisors and caseworkers (and API
    clients), while it may still act on it."""
    return _verdict(require_route, actor, referral)


def authorize_route(actor: Actor, referral: Referral) -> None:
    """Who may route (403), before the body is read: the receiving side with ``referrals:write`` (any of
    its staff who see the referral — the current office's, its supervisors, national staff — and its API
    clients)."""
    require_refer(actor)
    if side_of(actor, referral) != Side.RECEIVER:
        raise WrongSide("Only the receiving institution routes a referral to its offices.")


def require_route_state(actor: Actor, referral: Referral) -> None:
    """After the body: any non-terminal status (409), while the receiver may still act on it (403)."""
    if referral.status in TERMINAL_STATUSES or referral.status == Status.DRAFT:
        raise InvalidTransition("route", referral.status)
    if not _receiver_may_act(actor, referral):
        raise Forbidden("Your institution no longer has access to act on this referral.")


def require_route(actor: Actor, referral: Referral) -> None:
    authorize_route(actor, referral)
    require_route_state(actor, referral)


# --- assignment --------------------------------------------------------------------------------------


def _require_assignable(actor: Actor, referral: Referral, verb: str) -> None:
    if side_of(actor, referral) != Side.RECEIVER:
        raise WrongSide(f"Only the receiving institution {verb} its referrals.")
    if referral.status not in ASSIGNABLE_STATUSES:
        raise InvalidTransition("assign", referral.status)
    if not _receiver_may_act(actor, referral):
        raise Forbidden("Your institution no longer has access to act on this referral.")


def require_takes_referrals(actor: Actor) -> None:
    require_refer(actor)
    if not takes_referrals(actor):
        raise Forbidden("Only a caseworker takes a referral; supervisors assign them.")


def require_take(actor: Actor, referral: Referral) -> None:
    """A caseworker takes an open, unassigned inbound referral its institution may still act on."""
    require_takes_referrals(actor)
    _require_assignable(actor, referral, "takes")
    if referral.assignee_id is not None and referral.assignee_id == actor.user.pk:
        raise ProblemError("already-yours", 409, "The referral is already assigned to you.")
    if referral.assignee_id is not None:
        raise ProblemError("already-assigned", 409, "The referral is already assigned.")


def may_take(actor: Actor, referral: Referral) -> bool:
    return _verdict(require_take, actor, referral)


def require_assigns_referrals(actor: Actor) -> None:
    require_refer(actor)
    if not assigns_referrals(actor):
        raise Forbidden("Only a supervisor assigns referrals.")


def require_assign(actor: Actor, referral: Referral) -> None:
    """A supervisor assigns (or reassigns) an open inbound referral its institution may still act on."""
    require_assigns_referrals(actor)
    _require_assignable(actor, referral, "assigns")


def may_assign(actor: Actor, referral: Referral) -> bool:
    return _verdict(require_assign, actor, referral)


# --- notes, consent, the printed sheet, the case id --------------------------------------------------


def require_note(actor: Actor, referral: Referral) -> None:
    """A note between the institutions: the receiver while it sees the personal data, never once the
    person was erased, and the sender not on a referral voided as entered in error."""
    require_refer(actor)
    side = side_of(actor, referral)
    if side == Side.RECEIVER and not receiver_sees_personal(actor, referral):
        raise Forbidden("Your institution no longer has access to this referral's notes.")
    if referral.case.is_erased:
        # Refused rather than stored empty: a note is nothing but its text, which can no longer be kept.
        raise CaseErased()
    if side == Side.SENDER and referral.status == Status.ENTERED_IN_ERROR:
        raise InvalidTransition("note", referral.status)


def may_note(actor: Actor, referral: Referral) -> bool:
    return _verdict(require_note, actor, referral)


def require_withdraw_consent(actor: Actor, referral: Referral) -> None:
    """The sending institution records that the person withdrew consent (once)."""
    require_refer(actor)
    if side_of(actor, referral) != Side.SENDER:
        raise WrongSide("Only the sending institution records a withdrawal of consent.")


def require_consent_not_withdrawn(referral: Referral) -> None:
    if referral.consent.withdrawn_at is not None:
        raise InvalidTransition("withdraw consent", "already withdrawn")


def may_withdraw_consent(actor: Actor, referral: Referral) -> bool:
    if not _verdict(require_withdraw_consent, actor, referral):
        return False
    return _verdict(require_consent_not_withdrawn, referral)


def require_print(actor: Actor, referral: Referral, *, shares_personal: bool) -> None:
    """The printable sheet: by the sending institution only (the person consented to one recipient; a
    receiver passing the data on would be a new disclosure), while the reader may see the personal data
    (``shares_personal``, from ``referrals.reads``), with active consent, and never for a referral voided
    as entered in error (it should not exist: nothing about it is handed out)."""
    if side_of(actor, referral) != Side.SENDER:
        # WrongSide: the receiver is told it never could print, not that the data can no longer be printed.
        raise WrongSide("Only the sending institution prints a referral sheet.")
    if not shares_personal or not consent_given(referral) or referral.status == Status.ENTERED_IN_ERROR:
        raise Forbidden("The personal data of this referral may not be printed.")


def may_print(actor: Actor, referral: Referral) -> bool:
    from .reads import shares_personal  # reads applies require_print: imported here, not at the top

    return _verdict(require_print, actor, referral, shares_personal=shares_personal(actor, referral))


def may_see_case(actor: Actor, referral: Referral) -> bool:
    """The sender's case id is the sender's: a receiver is told the referral, not the case behind it."""
    return referral.from_institution_id == actor.institution.pk
