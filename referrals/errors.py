"""Domain errors raised by services; each carries its contract problem slug and status."""

from plumbing.problems import ProblemError


class NotVisible(ProblemError):
    """Not found — or not the caller's to see (the same 404). ``denial`` holds what the core records as
    ``access.denied`` (ids and codes; ``None`` when the caller's own check raised it)."""

    def __init__(self, denial: dict | None = None):
        super().__init__("not-found", 404, "Not found.")
        self.denial = denial


class WrongSide(ProblemError):
    def __init__(self, detail: str = "This action is reserved to the other institution."):
        super().__init__("permission-denied", 403, detail)


class Forbidden(ProblemError):
    def __init__(self, detail: str):
        super().__init__("permission-denied", 403, detail)


class MissingField(ProblemError):
    def __init__(self, field: str):
        super().__init__(
            "validation-error",
            400,
            f"'{field}' is required for this action.",
            {field: ["This field is required."]},
        )


class InvalidInput(ProblemError):
    def __init__(self, errors: dict[str, list[str]], detail: str = "The request body is invalid."):
        super().__init__("validation-error", 400, detail, errors)


class InvalidTransition(ProblemError):
    def __init__(self, action: str, status: str):
        super().__init__(
            "invalid-transition", 409, f"'{action}' is not allowed while the referral is {status}."
        )


class CaseErased(ProblemError):
    """The case's subject was erased (crypto-shredded): nothing may be written about the person again."""

    def __init__(self):
        super().__init__(
            "case-erased", 409, "The subject of this case was erased; it can no longer be changed."
        )


class ConsentRequired(ProblemError):
    def __init__(self):
        super().__init__("consent-required", 409, "The referral has no given, active consent.")


class PreconditionFailed(ProblemError):
    def __init__(self):
        super().__init__("precondition-failed", 412, "The referral has changed (If-Match does not match).")


class OfficeNotAccepting(ProblemError):
    """The receiving office is paused (contract §7.2): 409 with its ``paused_until`` (``YYYY-MM-DD``) in the
    detail, or none when it is paused until resumed."""

    def __init__(self, paused_until=None):
        until = f" until {paused_until.isoformat()}" if paused_until else " until further notice"
        super().__init__("office-not-accepting", 409, f"The office is not accepting referrals{until}.")
        self.paused_until = paused_until


class PeerUnavailable(ProblemError):
    """The sender's node — the referral's authority (contract §7.4) — could not be reached or did not
    answer verifiably: nothing was changed, here or there."""

    def __init__(self):
        super().__init__(
            "peer-unavailable",
            503,
            "The node of the referral's sending institution cannot be reached now; nothing was changed. "
            "Try again later.",
        )
