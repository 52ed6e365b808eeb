"""HTTP to peers: the hardened client of the webhooks, with the federation's own private-address switch."""

from __future__ import annotations

import functools

import requests_hardened
from django.conf import settings


@functools.lru_cache(maxsize=2)
def _http(allow_private: bool) -> requests_hardened.Manager:
    """Connects to the very address it checked, refuses private and loopback peers unless allowed
    (``FEDERATION_ALLOW_PRIVATE_URLS``), never follows a redirect."""
    return requests_hardened.Manager(
        requests_hardened.Config(
            ip_filter_enable=not allow_private,
            ip_filter_allow_loopback_ips=allow_private,
            never_redirect=True,
            default_timeout=(5, 10),
            user_agent_override="referral-case-manager-federation/1",
        )
    )


def post(url: str, *, data: bytes, headers: dict):
    """POST; ``requests.RequestException`` when the peer cannot be reached (the message names no URL)."""
    manager = _http(bool(getattr(settings, "FEDERATION_ALLOW_PRIVATE_URLS", False)))
    timeout = float(getattr(settings, "FEDERATION_TIMEOUT_SECONDS", 10.0))
    return manager.send_request("POST", url, data=data, headers=headers, timeout=timeout)
