"""Rate limits of the federation door (contract §7.4: a door like the others; a peer, or anyone, must not be
able to flood it). Counted in the Django cache (``plumbing.throttling.hit``: Redis with ``REDIS_URL``, shared
by every process; the local memory cache otherwise), in fixed windows:

* **per pinned peer**, its verified messages, each of a batch's counted (``FEDERATION_THROTTLE_NODE``,
  30000/min): far above what a peer catching up posts (1,000 referrals at 50+/s, a few messages each), so
  that only a runaway or hostile peer is slowed. Keyed by the peer's id, after its signature verified.
* **per client IP**, the requests refused before a node was recognised — unsigned, malformed, an unknown
  node, a bad signature, stale… (``FEDERATION_THROTTLE_UNVERIFIED``, 60/min). Keyed by an HMAC of the IP
  (never the address itself). Over it, such a request is still answered 401 (contract §7.4: any path
  without a valid node signature) but writes nothing: the refusals' audit events (``federation.refused``)
  are what a flood would otherwise multiply. A verified message from the same IP (a peer behind the same
  proxy) is never held back by it.

Over a peer's limit: a signed 429 problem+json ``throttled`` with ``Retry-After`` (the seconds left in the
window). Over either limit, one ``federation.refused`` event per window and key (``cause``
``rate-limited``; the peer's URL when known). The
sending node's outbox treats a 429 as "later": the message stays waiting and is posted again after
``Retry-After`` (``federation.delivery``), nothing lost.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac

from plumbing.throttling import Window, hit

from .models import Peer


def verified_message(peer: Peer, messages: int = 1) -> Window | None:
    """Count a verified request of ``peer`` carrying ``messages`` messages (a batch counts each); None when
    the cache is unreachable (served)."""
    return hit("federation_node", str(peer.pk), settings.FEDERATION_THROTTLE_NODE, amount=messages)


def refused_request(ip: str | None) -> Window | None:
    """Count one request refused at verification from ``ip``; None when the cache is unreachable."""
    ident = salted_hmac("federation.throttling", ip or "-").hexdigest()[:32]
    return hit("federation_unverified", ident, settings.FEDERATION_THROTTLE_UNVERIFIED)
