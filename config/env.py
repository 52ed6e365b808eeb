"""Reading configuration from the environment, in one place (contract §2)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """A string from the environment, or ``default`` when unset or empty."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    """A boolean written ``true``/``false`` (contract §2)."""
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (a typo is refused at start-up, never taken for the default)."""
    value = env_str(name, default).strip()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of: {', '.join(choices)}")
    return value


def env_database(name: str, default: str, **options) -> dict:
    """A database from a URL (dj-database-url syntax); a malformed URL names the variable."""
    import dj_database_url

    try:
        return dj_database_url.parse(env_str(name, default), **options)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(
            f"{name} is not a database URL this system understands (sqlite:////path, postgres://…)"
        ) from exc


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """An integer (at least ``minimum``), or ``default`` when unset or empty."""
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """A number of seconds or the like (at least ``minimum``), or ``default`` when unset or empty."""
    value = env_str(name)
    if value is None:
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name} must be a finite number")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def decode_key(text: str, name: str) -> bytes:
    """Decode one url-safe base64 32-byte key, or fail with a message naming the variable (not the value)."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, TypeError):
        raise ImproperlyConfigured(f"{name}: a key is not url-safe base64") from None
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{name}: every key must decode to 32 bytes")
    return raw


def env_node_url(name: str) -> str:
    """A node's own base URL (contract §7.4): absolute http(s), no credentials, query or fragment; returned
    without a trailing slash; empty when unset (federation off)."""
    from urllib.parse import urlsplit

    value = env_str(name, "")
    if not value:
        return ""
    value = value.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — a malformed port raises here
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an absolute http(s) URL") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise ImproperlyConfigured(
            f"{name} must be an absolute http(s) URL (no credentials, query or fragment)"
        )
    return value


def new_key_text() -> str:
    """A fresh random 32-byte key as url-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _dev_values() -> dict[str, str]:
    return {
        "FIELD_ENCRYPTION_KEYS": new_key_text(),
        "BLIND_INDEX_KEY": new_key_text(),
        "AUDIT_HMAC_KEY": new_key_text(),
        "AUDIT_SIGNING_KEY": new_key_text(),
        "NODE_SIGNING_KEY": new_key_text(),
        "NODE_ENCRYPTION_KEY": new_key_text(),
        "SECRET_KEY": "dev-insecure-" + secrets.token_urlsafe(40),
    }


def dev_secrets() -> dict[str, str]:
    """Development keys, generated once into ``var/dev-keys.json`` (never committed), with a warning.

    A key added to the project later (e.g. ``AUDIT_SIGNING_KEY``) is generated into an existing file the
    first time it is needed; the keys already there are kept.
    """
    path = VAR_DIR / "dev-keys.json"
    if path.exists():
        values = json.loads(path.read_text())
        missing = {name: value for name, value in _dev_values().items() if name not in values}
        if not missing:
            return values
        values.update(missing)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
        os.replace(tmp, path)
        print(
            f"WARNING: generated development keys {', '.join(sorted(missing))} into {path}. "
            "Never use them in production.",
            file=sys.stderr,
        )
        return json.loads(path.read_text())
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    values = _dev_values()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    print(
        f"WARNING: generated development keys into {path}. Never use them in production; "
        "set FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEY, AUDIT_HMAC_KEY and AUDIT_SIGNING_KEY "
        "in the environment.",
        file=sys.stderr,
    )
    return values


def env_rate(name: str, default: str) -> str:
    """A rate limit, ``count/period`` with a period of s, min, h or day (``600/min``), or ``default``."""
    value = (env_str(name) or default).strip()
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period[:1].lower() not in ("s", "m", "h", "d"):
        raise ImproperlyConfigured(f"{name} must be a count per period, e.g. 600/min")
    return value
