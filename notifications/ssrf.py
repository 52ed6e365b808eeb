"""Refusal of webhook URLs that resolve to private, loopback, link-local or otherwise internal addresses."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator


class UnsafeUrl(ValueError):
    """The URL is not an acceptable webhook target (the message never contains the URL)."""


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", False))


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_url(url: str, *, resolve: bool = True) -> None:
    """Raise UnsafeUrl unless ``url`` is an absolute http(s) URL with a valid host whose every address is
    public (contract §6.1: no whitespace or control characters anywhere)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UnsafeUrl("the URL contains whitespace or control characters")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise UnsafeUrl("not an absolute http(s) URL with a valid host") from exc
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeUrl("malformed URL") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeUrl("the URL must be http or https with a host")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in the URL are not allowed")
    if getattr(settings, "IS_PRODUCTION", False) and parts.scheme != "https" and not _allow_private():
        raise UnsafeUrl("the URL must use https")
    if _allow_private() or not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeUrl("the host does not resolve") from exc
    if not infos:
        raise UnsafeUrl("the host does not resolve")
    for info in infos:
        try:
            ip = ipaddress.ip_address(info[4][0].split("%")[0])
        except ValueError as exc:
            raise UnsafeUrl("the host resolves to an invalid address") from exc
        if not _is_public(ip):
            raise UnsafeUrl("the host resolves to a private, loopback or link-local address")
