"""Outbound HTTP to addresses others chose (webhook endpoints, federation peers): one hardened client."""

from __future__ import annotations

import functools
import threading

import requests
import requests_hardened
from urllib3.exceptions import ProtocolError


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


_sessions = threading.local()


def _session(allow_private: bool, user_agent: str) -> requests.Session:
    """This thread's session of the hardened client (a ``requests.Session`` is not shared between threads)."""
    held = getattr(_sessions, "held", None)
    if held is None:
        held = _sessions.held = {}
    key = (allow_private, user_agent)
    if key not in held:
        held[key] = _manager(allow_private, user_agent).get_session()
    return held[key]


def kept_alive_post(
    url: str, *, data: bytes, headers: dict, timeout: float, allow_private: bool, user_agent: str
):
    """POST through the hardened client on a connection kept open between calls (one session per thread:
    no new TCP, and TLS, handshake per message to the same peer). The address is still checked at each
    call (requests-hardened filters the resolved address the pool connects to).

    Only for requests that may arrive twice: a kept connection the server closed meanwhile fails the first
    attempt after the request may have been sent (``Connection aborted``), and the request is posted once
    more on a new connection. ``requests.RequestException`` when the target cannot be reached."""
    session = _session(allow_private, user_agent)
    try:
        return session.request("POST", url, data=data, headers=headers, timeout=timeout)
    except requests.ConnectionError as exc:
        if not (exc.args and isinstance(exc.args[0], ProtocolError)):
            raise  # refused, unresolvable, timed out: not a kept connection's end
    return session.request("POST", url, data=data, headers=headers, timeout=timeout)
