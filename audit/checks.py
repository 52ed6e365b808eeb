"""System checks of the audit app: the checkpoint signing key (``check --deploy``) and, with a database,
the append-only triggers (``check --database default``)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections
from django.db.migrations.recorder import MigrationRecorder

from .verification import append_only_triggers_ok


def check_signing_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``AUDIT_SIGNING_KEY`` is a 32-byte Ed25519 seed from the environment, distinct from the other keys."""
    key = getattr(settings, "AUDIT_SIGNING_KEY", b"")
    if not key or not isinstance(key, bytes) or len(key) != 32:
        return [
            checks.Error(
                "AUDIT_SIGNING_KEY is missing or not a 32-byte key: audit checkpoints cannot be signed.",
                hint="Set AUDIT_SIGNING_KEY (url-safe base64 of 32 random bytes) in the environment.",
                id="audit.E001",
            )
        ]
    errors = []
    if getattr(settings, "AUDIT_SIGNING_KEY_IS_DEVELOPMENT", False):
        errors.append(
            checks.Error(
                "AUDIT_SIGNING_KEY is the generated development key (var/dev-keys.json).",
                hint="Set AUDIT_SIGNING_KEY in the environment; publish its public key to the partners.",
                id="audit.E002",
            )
        )
    if key in (getattr(settings, "AUDIT_HMAC_KEY", b""), getattr(settings, "BLIND_INDEX_KEY", b"")):
        errors.append(
            checks.Error(
                "AUDIT_SIGNING_KEY must not be the same key as AUDIT_HMAC_KEY or BLIND_INDEX_KEY.",
                id="audit.E003",
            )
        )
    return errors


#: The migrations that install the triggers (each a no-op on the other vendor).
TRIGGER_MIGRATIONS = {("audit", "0003_append_only_sqlite"), ("audit", "0004_append_only_postgresql")}


def check_append_only(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """The database still refuses UPDATE and DELETE on ``audit_auditevent`` (once migrated that far)."""
    errors = []
    for alias in databases or ():
        connection = connections[alias]
        try:
            applied = set(MigrationRecorder(connection).applied_migrations())
            if not applied >= TRIGGER_MIGRATIONS:
                continue  # not migrated yet: `migrate` installs them
            ok = append_only_triggers_ok(connection)
        except DatabaseError:
            if connection.in_atomic_block:
                raise
            continue
        if not ok:
            errors.append(
                checks.Error(
                    "The append-only triggers of audit_auditevent are missing or disabled.",
                    hint="Run `manage.py migrate audit` and `manage.py verify_audit`; see docs/audit.md.",
                    id="audit.E004",
                )
            )
    return errors


def register() -> None:
    checks.register(check_signing_key, checks.Tags.security, deploy=True)
    checks.register(check_append_only, checks.Tags.database)
