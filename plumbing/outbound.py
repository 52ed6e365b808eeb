"""Outbound HTTP to addresses others chose (webhook endpoints, federation peers): one hardened client."""

from __future__ import annotations

import functools

import requests_hardened


@functools.lru_cache(maxsize=4)
def _manager(allow_private: bool, user_agent: str) -> requests_hardened.Manager:
    """requests-hardened connects to the very address it checked (no second DNS look-up a rebinding could
    answer differently), refuses private and loopback targets unless allowed, and never follows a redirect."""
    return requests_hardened.Manager(
        requests_hardened.Config(
            ip_filter_enable=not allow_private,
            ip_filter_allow_loopback_ips=allow_private,
            never_redirect=True,
            default_timeout=(5, 10),
            user_agent_override=user_agent,
        )
    )


def hardened_post(
    url: str, *, data: bytes, headers: dict, timeout: float, allow_private: bool, user_agent: str
):
    """POST through the hardened client; ``requests.RequestException`` when the target cannot be reached."""
    manager = _manager(allow_private, user_agent)
    return manager.send_request("POST", url, data=data, headers=headers, timeout=timeout)
