"""System checks: a missing or wrong encryption key is a clear error at start-up, not a surprise on read.

``check_encryption_settings`` runs with every management command (and ``runserver``);
``check_data_keys`` is a database check: it runs with ``migrate`` (the first step of ``scripts/web``)
and ``manage.py check --database default``. Messages name keys by their fingerprint, never by value.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections

from . import crypto


def check_encryption_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Keys are configured, 32 bytes each, distinct."""
    errors: list[checks.CheckMessage] = []
    keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    if not keys:
        errors.append(
            checks.Error(
                "FIELD_ENCRYPTION_KEYS is empty: personal data can be neither written nor read.",
                hint="Set FIELD_ENCRYPTION_KEYS in the environment (comma-separated url-safe base64 "
                "32-byte keys; the first encrypts).",
                id="referrals.E001",
            )
        )
    for position, key in enumerate(keys):
        if not isinstance(key, bytes) or len(key) != crypto.KEY_BYTES:
            errors.append(
                checks.Error(f"FIELD_ENCRYPTION_KEYS[{position}] is not a 32-byte key.", id="referrals.E002")
            )
    if len({bytes(k) for k in keys if isinstance(k, bytes)}) != len(keys):
        errors.append(checks.Warning("FIELD_ENCRYPTION_KEYS lists the same key twice.", id="referrals.W001"))
    blind = getattr(settings, "BLIND_INDEX_KEY", b"")
    if not blind or not isinstance(blind, bytes) or len(blind) != crypto.KEY_BYTES:
        errors.append(
            checks.Error(
                "BLIND_INDEX_KEY is missing or not a 32-byte key: document-number search and duplicate "
                "checks cannot work.",
                hint="Set BLIND_INDEX_KEY in the environment (url-safe base64, 32 bytes).",
                id="referrals.E003",
            )
        )
    return errors


def _wrapping_key_ids(alias: str) -> dict[bytes, int]:
    """How many cases each key id wraps (one pass over one narrow column)."""
    from .models import Case

    counts: dict[bytes, int] = {}
    rows = (
        Case.objects.using(alias)
        .filter(wrapped_data_key__isnull=False)
        .order_by()
        .values_list("wrapped_data_key", flat=True)
        .iterator(chunk_size=5000)
    )
    for wrapped in rows:
        key_id = crypto.wrapped_key_id(wrapped)
        counts[key_id] = counts.get(key_id, 0) + 1
    return counts


def check_data_keys(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Every stored data key is wrapped by a configured key, and a sample of them unwraps."""
    errors: list[checks.CheckMessage] = []
    if not databases or not settings.FIELD_ENCRYPTION_KEYS:
        return errors
    ring = crypto.keyring()
    active = crypto.kek_id(crypto.active_kek())
    for alias in databases:
        try:
            counts = _wrapping_key_ids(alias)
        except DatabaseError:
            # Not migrated yet (first ``migrate``): there is nothing encrypted to check.
            connection = connections[alias]
            if connection.in_atomic_block:
                raise
            continue
        unknown = {key_id: n for key_id, n in counts.items() if key_id not in ring}
        for key_id, n in sorted(unknown.items()):
            errors.append(
                checks.Error(
                    f"{n} case data key(s) are wrapped by key {key_id.hex()}, which is not in "
                    "FIELD_ENCRYPTION_KEYS: their personal data cannot be read.",
                    hint="Add the missing key back to FIELD_ENCRYPTION_KEYS (after the active one); "
                    "drop an old key only after `manage.py rotate_keys` reports nothing left on it.",
                    id="referrals.E004",
                )
            )
        errors.extend(_sample_unwraps(alias, set(counts) - set(unknown)))
        old = sum(n for key_id, n in counts.items() if key_id != active and key_id in ring)
        if old:
            errors.append(
                checks.Info(
                    f"{old} case data key(s) are still wrapped by an older key.",
                    hint="Run `manage.py rotate_keys` to move them to the active key.",
                    id="referrals.I001",
                )
            )
    return errors


def _sample_unwraps(alias: str, key_ids: set[bytes]) -> list[checks.CheckMessage]:
    """Unwrap one data key per configured key id: a key that has the right id but does not decrypt
    (a corrupted value, or a tampered row) is reported here rather than on the first read."""
    from .models import Case

    errors = []
    remaining = set(key_ids)
    for pk, wrapped in (
        Case.objects.using(alias)
        .filter(wrapped_data_key__isnull=False)
        .order_by("-created_at")
        .values_list("pk", "wrapped_data_key")
        .iterator(chunk_size=500)
    ):
        key_id = crypto.wrapped_key_id(wrapped)
        if key_id not in remaining:
            continue
        remaining.discard(key_id)
        try:
            crypto.unwrap_data_key(wrapped, owner_id=pk)
        except crypto.KeyUnavailable:
            errors.append(
                checks.Error(
                    f"The data key of case {pk} does not unwrap with key {key_id.hex()}.",
                    hint="The key configured under this fingerprint is not the one that wrapped the data, "
                    "or the row was altered.",
                    id="referrals.E005",
                )
            )
        if not remaining:
            break
    return errors


def check_encrypted_ordering(app_configs=None, models=None, **kwargs) -> list[checks.CheckMessage]:
    """Ciphertext is never sorted: no model's ``Meta.ordering`` or ``get_latest_by`` names an encrypted field
    (across relations too), and every model with encrypted fields has the queryset that refuses
    ``order_by`` on them (``referrals.fields.EncryptedFieldsQuerySet``)."""
    from django.apps import apps

    from .fields import EncryptedField, EncryptedFieldsQuerySet, encrypted_ordering_field

    errors: list[checks.CheckMessage] = []
    if models is None:
        configs = apps.get_app_configs() if app_configs is None else app_configs
        models = [model for config in configs for model in config.get_models()]
    for model in models:
        opts = model._meta
        latest = opts.get_latest_by
        names = [*(opts.ordering or []), *([latest] if isinstance(latest, str) else (latest or []))]
        for item in names:
            field = encrypted_ordering_field(model, item)
            if field is not None:
                errors.append(
                    checks.Error(
                        f"{opts.label} is ordered by the encrypted field '{field.name}' ({item!r}): "
                        "ciphertext order is meaningless.",
                        obj=model,
                        id="referrals.E006",
                    )
                )
        encrypted = [f.name for f in opts.concrete_fields if isinstance(f, EncryptedField)]
        if encrypted and not isinstance(model._default_manager.get_queryset(), EncryptedFieldsQuerySet):
            errors.append(
                checks.Error(
                    f"{opts.label} has encrypted fields but its default manager's queryset is not an "
                    "EncryptedFieldsQuerySet: ordering by them would not be refused.",
                    hint="Derive the model from referrals.models.EncryptedByCase, or give it "
                    "objects = EncryptedFieldsQuerySet.as_manager().",
                    obj=model,
                    id="referrals.E007",
                )
            )
    return errors


def register() -> None:
    """Register the checks (called once from ``ReferralsConfig.ready``)."""
    checks.register(check_encryption_settings, "security")
    checks.register(check_data_keys, checks.Tags.database)
    checks.register(check_encrypted_ordering, checks.Tags.models)
