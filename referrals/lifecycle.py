"""The referral lifecycle as data: one table used by services, API, UI buttons and tests (contract §4).

Each transition names its **guards**: conditions beyond side and status, each a predicate on the actor
and the referral with the problem the services raise when it fails. A new rule of the lifecycle ("no
referral to an institution without an active agreement") is a guard named on its transitions' line;
``referrals.policy`` asks every guard for the doors (buttons) and the services (errors). See
docs/architecture.md, "Where a new rule goes".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accounts.actor import Actor
from accounts.choices import Scope
from plumbing.problems import ProblemError

from .choices import Side, Status
from .errors import ConsentRequired, Forbidden, OfficeNotAccepting

S = Status


@dataclass(frozen=True)
class Guard:
    """A condition of a transition: ``allows(actor, referral)``, else the services raise
    ``refusal(referral)``.

    ``stage`` places its check in the contract's order: ``"actor"`` guards are about who acts (403,
    checked with the side, before the body is read); ``"referral"`` guards are about the referral's
    state (checked last, after the status and ``If-Match``).
    """

    name: str
    allows: Callable[[Actor, object], bool]
    refusal: Callable[[object], ProblemError]
    stage: str = "referral"


def may_void(actor: Actor) -> bool:
    """Voiding is for supervisors, or API clients holding ``referrals:void`` (the one place of this rule)."""
    return actor.is_supervisor or (actor.api_client is not None and actor.has_scope(Scope.REFERRALS_VOID))


def consent_given(referral) -> bool:
    """The person's consent is given and not withdrawn: the referral may travel."""
    consent = getattr(referral, "consent", None)
    return consent is not None and consent.is_active


VOID_RIGHT = Guard(
    "void-right",
    allows=lambda actor, referral: may_void(actor),
    refusal=lambda referral: Forbidden(
        "Only supervisors (or clients with referrals:void) may void a referral."
    ),
    stage="actor",
)
CONSENT_GIVEN = Guard(
    "consent-given",
    allows=lambda actor, referral: consent_given(referral),
    refusal=lambda referral: ConsentRequired(),
)


def office_accepting(referral) -> bool:
    """The referral's receiving office (if it names one) accepts referrals now (contract §7.2)."""
    return referral.to_office_id is None or referral.to_office.is_accepting()


OFFICE_ACCEPTING = Guard(
    "office-accepting",
    allows=lambda actor, referral: office_accepting(referral),
    refusal=lambda referral: OfficeNotAccepting(referral.to_office.paused_until),
)


@dataclass(frozen=True)
class Transition:
    action: str
    from_statuses: frozenset[str]
    to_status: str
    side: str
    needs: str | None = None  # "reason" or "outcome": required in the body
    optional_reason: bool = False  # hold: a reason may be given
    guards: tuple[Guard, ...] = ()  # conditions beyond side and status (see Guard)


def _t(action, froms, to, side, **kw) -> Transition:
    return Transition(action, frozenset(froms), to, side, **kw)


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in [
        _t("send", [S.DRAFT], S.REQUESTED, Side.SENDER, guards=(CONSENT_GIVEN, OFFICE_ACCEPTING)),
        _t("receive", [S.REQUESTED], S.RECEIVED, Side.RECEIVER),
        _t("accept", [S.REQUESTED, S.RECEIVED], S.ACCEPTED, Side.RECEIVER),
        _t("reject", [S.REQUESTED, S.RECEIVED], S.REJECTED, Side.RECEIVER, needs="reason"),
        _t("start", [S.ACCEPTED], S.IN_PROGRESS, Side.RECEIVER),
        _t("hold", [S.IN_PROGRESS], S.ON_HOLD, Side.RECEIVER, optional_reason=True),
        _t("resume", [S.ON_HOLD], S.IN_PROGRESS, Side.RECEIVER),
        _t("complete", [S.IN_PROGRESS], S.COMPLETED, Side.RECEIVER, needs="outcome"),
        _t("fail", [S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD], S.FAILED, Side.RECEIVER, needs="reason"),
        _t(
            "cancel",
            [S.DRAFT, S.REQUESTED, S.RECEIVED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD],
            S.CANCELLED,
            Side.SENDER,
            needs="reason",
        ),
        _t(
            "void",
            [s for s in S.values if s != S.ENTERED_IN_ERROR],
            S.ENTERED_IN_ERROR,
            Side.SENDER,
            needs="reason",
            guards=(VOID_RIGHT,),
        ),
    ]
}

ACTIONS = tuple(TRANSITIONS)

#: Status changes whose reason is kept in ``status_reason``.
REASON_ACTIONS = frozenset({"reject", "hold", "fail", "cancel", "void"})


def allowed_actions(status: str, side: str) -> list[str]:
    """Actions a party on ``side`` may take on a referral in ``status`` (before per-actor checks)."""
    return [t.action for t in TRANSITIONS.values() if t.side == side and status in t.from_statuses]
