"""The referral lifecycle as data: one table used by services, API, UI buttons and tests (contract §4)."""

from __future__ import annotations

from dataclasses import dataclass

from .choices import Side, Status

S = Status


@dataclass(frozen=True)
class Transition:
    action: str
    from_statuses: frozenset[str]
    to_status: str
    side: str
    needs: str | None = None  # "reason" or "outcome": required in the body
    optional_reason: bool = False  # hold: a reason may be given
    supervisor_only: bool = False  # void: supervisors, or clients with referrals:void


def _t(action, froms, to, side, **kw) -> Transition:
    return Transition(action, frozenset(froms), to, side, **kw)


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in [
        _t("send", [S.DRAFT], S.REQUESTED, Side.SENDER),
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
            supervisor_only=True,
        ),
    ]
}

ACTIONS = tuple(TRANSITIONS)

#: Status changes whose reason is kept in ``status_reason``.
REASON_ACTIONS = frozenset({"reject", "hold", "fail", "cancel", "void"})


def allowed_actions(status: str, side: str) -> list[str]:
    """Actions a party on ``side`` may take on a referral in ``status`` (before per-actor checks)."""
    return [t.action for t in TRANSITIONS.values() if t.side == side and status in t.from_statuses]
