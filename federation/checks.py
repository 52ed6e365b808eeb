"""System checks of federation: a federated node's keys (``check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


def check_node_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if not getattr(settings, "NODE_URL", ""):
        return []  # federation off: a single node needs no node keys
    signing = getattr(settings, "NODE_SIGNING_KEY", b"")
    encryption = getattr(settings, "NODE_ENCRYPTION_KEY", b"")
    if len(signing) != 32 or len(encryption) != 32:
        return [
            checks.Error(
                "NODE_SIGNING_KEY or NODE_ENCRYPTION_KEY is missing: this node cannot sign or open messages.",
                hint="Set both (url-safe base64 of 32 random bytes each) in the environment.",
                id="federation.E001",
            )
        ]
    errors = []
    if getattr(settings, "NODE_KEYS_ARE_DEVELOPMENT", False):
        errors.append(
            checks.Error(
                "A node key is the generated development key (var/dev-keys.json).",
                hint="Set NODE_SIGNING_KEY and NODE_ENCRYPTION_KEY, then give the peers the new card.",
                id="federation.E002",
            )
        )
    others = [
        getattr(settings, name, b"") for name in ("AUDIT_SIGNING_KEY", "AUDIT_HMAC_KEY", "BLIND_INDEX_KEY")
    ] + list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []))
    if signing == encryption or signing in others or encryption in others:
        errors.append(
            checks.Error(
                "NODE_SIGNING_KEY and NODE_ENCRYPTION_KEY must be two distinct keys, used for nothing else.",
                id="federation.E003",
            )
        )
    return errors


def register() -> None:
    checks.register(check_node_keys, checks.Tags.security, deploy=True)
