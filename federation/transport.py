"""HTTP to peers: the hardened client of the webhooks (``plumbing.outbound``), with the federation's own
private-address switch, on connections kept open between messages (a message may arrive twice: the door
answers a message id it saw with its first answer)."""

from __future__ import annotations

from django.conf import settings

from plumbing.outbound import kept_alive_post


def post(url: str, *, data: bytes, headers: dict):
    """POST; ``requests.RequestException`` when the peer cannot be reached (the message names no URL).
    Private and loopback peers only with ``FEDERATION_ALLOW_PRIVATE_URLS``."""
    return kept_alive_post(
        url,
        data=data,
        headers=headers,
        timeout=float(getattr(settings, "FEDERATION_TIMEOUT_SECONDS", 10.0)),
        allow_private=bool(getattr(settings, "FEDERATION_ALLOW_PRIVATE_URLS", False)),
        user_agent="referral-case-manager-federation/1",
    )
