"""Peers serve their own offices to each other (contract §7.2/§7.4: "the sender may name a to_office of the
remote institution (peers serve their own offices to each other, and GET /api/v1/offices/ lists them)").

* ``directory.offices`` (``{}``, in clear: offices are no one's personal data) → ``{"offices": [...]}``: the
  offices of the institutions this node hosts, each ``{"institution", "code", "name", "province",
  "services", "languages", "accepting_referrals", "paused_until"}`` — accepting *now*, ``paused_until`` as
  ``YYYY-MM-DD`` or null; never the pause's reason, staff or anything about a person.
* :func:`refresh_offices` asks one peer for them and stores them as offices of its remote institutions
  through ``accounts.services.remote_offices_save`` (created or updated by code; those no longer served
  kept, not accepting; an entry for an institution the peer does not host refused). It runs right after
  pinning (``federation_peer_add``) and in every witnessing pass of ``witnessing.witness_peers`` (hourly,
  and ``federation_witness``): no periodic job of its own.
"""

from __future__ import annotations

import logging
from datetime import date

from django.utils import timezone

from accounts import directory as accounts_directory
from accounts.services import remote_institution_names_save, remote_offices_save
from plumbing.problems import ProblemError

from . import keys, services
from .handlers import Incoming, Outcome, handles
from .models import Peer

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "directory.offices"


class OfficesNotRefreshed(RuntimeError):
    """The peer's offices could not be fetched this time (unreachable, or an answer of the wrong shape);
    the message is a class of error, never a text from the peer."""


@handles(MESSAGE_TYPE)
def offices(message: Incoming) -> Outcome:
    """``{}`` → 200 ``{"offices": [...]}``: this node's own offices (see the module's text)."""
    if message.payload:
        raise ProblemError(
            "validation-error",
            400,
            "Unknown fields.",
            {name: ["Unknown field."] for name in sorted(message.payload)},
        )
    today = timezone.localdate()
    served = [
        {
            "institution": office.institution.code,
            "code": office.code,
            "name": office.name,
            "province": office.province,
            "services": list(office.services),
            "languages": list(office.languages),
            "accepting_referrals": office.is_accepting(today),
            "paused_until": office.paused_until.isoformat() if office.paused_until else None,
        }
        for office in accounts_directory.local_offices()
    ]
    names = [{"code": code, "name": name} for code, name in accounts_directory.local_institution_names()]
    return Outcome(200, {"offices": served, "institutions": names}, sealed=False)


def _from_wire(entry):
    """One served office with ``paused_until`` as a date (an entry of another shape is passed on as it is,
    for the service to refuse)."""
    if not isinstance(entry, dict) or "paused_until" not in entry:
        return entry
    value = entry["paused_until"]
    if value is None:
        return entry
    try:
        parsed = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        parsed = None
    return {**entry, "paused_until": parsed if parsed is not None else "invalid"}


def refresh_offices(peer: Peer) -> dict:
    """Fetch ``peer``'s offices and store them (``accounts.services.remote_offices_save``). Returns its
    outcome ``{"created", "changed", "withdrawn", "refused"}``; ``OfficesNotRefreshed`` when the peer cannot
    be reached or its answer is not a list of offices (nothing changed), or while federation is off (no
    ``NODE_URL``: a peer may be pinned before this node is configured)."""
    if not keys.enabled():
        raise OfficesNotRefreshed("federation-off")
    try:
        reply = services.send(peer, MESSAGE_TYPE, {})
    except services.PeerUnavailable as exc:
        raise OfficesNotRefreshed(exc.cause) from None
    served = reply.payload.get("offices") if reply.status == 200 else None
    if not isinstance(served, list):
        raise OfficesNotRefreshed(f"answer-{reply.status}" if reply.status != 200 else "answer-malformed")
    names = reply.payload.get("institutions")
    if isinstance(names, list):  # a peer of an earlier version serves offices only
        remote_institution_names_save(node=peer.url, names=names)
    return remote_offices_save(node=peer.url, offices=[_from_wire(entry) for entry in served])


def refresh_offices_quietly(peer: Peer) -> dict | None:
    """:func:`refresh_offices` for the periodic passes: never raises; a failure is logged by class only
    (the next pass tries again)."""
    try:
        return refresh_offices(peer)
    except OfficesNotRefreshed as exc:
        logger.info("federation directory: offices of %s not refreshed (%s)", peer.url, exc)
    except Exception as exc:  # noqa: BLE001 — a witnessing pass must not fail for the directory
        logger.warning("federation directory: offices of %s not refreshed (%s)", peer.url, type(exc).__name__)
    return None
