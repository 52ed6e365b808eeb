"""HTTP to peers: the hardened client of the webhooks (``plumbing.outbound``), with the federation's own
private-address switch."""

from __future__ import annotations

from django.conf import settings

from plumbing.outbound import hardened_post


def post(url: str, *, data: bytes, headers: dict):
    """POST; ``requests.RequestException`` when the peer cannot be reached (the message names no URL).
    Private and loopback peers only with ``FEDERATION_ALLOW_PRIVATE_URLS``."""
    return hardened_post(
        url,
        data=data,
        headers=headers,
        timeout=float(getattr(settings, "FEDERATION_TIMEOUT_SECONDS", 10.0)),
        allow_private=bool(getattr(settings, "FEDERATION_ALLOW_PRIVATE_URLS", False)),
        user_agent="referral-case-manager-federation/1",
    )
