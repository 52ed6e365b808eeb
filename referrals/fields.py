"""Encrypted model fields: ciphertext in the column, plaintext only in memory, bound to model/field/pk.

What the database can do with an encrypted column, and what it cannot:

* ``filter``/``exclude``/``get`` with any lookup or transform but ``isnull`` raise ``EncryptedLookupError``
  (a comparison with ciphertext would silently match nothing): search through a blind index instead.
* ``order_by("field")`` (also across relations, descending, or as ``F("field")``), ``latest``/``earliest``
  by it raise too — on every model with encrypted fields, whose querysets are ``EncryptedFieldsQuerySet``
  (``referrals.models.EncryptedByCase``): ciphertext order is random, so an ordering by it would be
  silently wrong. A model's ``Meta.ordering`` naming one, or a model with encrypted fields without that
  queryset, is a system check error (``referrals.checks``); and a test reads every ``order_by`` of the
  code (``tests/confidentiality/test_encryption.py``). Other expressions over an encrypted column see only
  ciphertext — never write them.
* ``values()`` / ``values_list()`` / ``only()`` / ``defer()`` / ``annotate(x=F(field))`` / aggregates work,
  but give ``Sealed`` tokens, never text: ``str(token)`` is ``"[encrypted]"`` and JSON encoders refuse
  them. Decryption needs the model instance (its case's data key and its primary key, the associated
  data).
* ``QuerySet.update(field=...)`` accepts only ``None`` (erasure); writing a value goes through ``save()``,
  which encrypts.
"""

from __future__ import annotations

import datetime
import json
from functools import cached_property

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from .crypto import FIELD_PREFIX, DataKeyDestroyed, decrypt_value, encrypt_value


class EncryptedLookupError(TypeError):
    """Raised for any lookup on an encrypted field: it would silently match nothing."""


class Sealed:
    """A ciphertext as loaded from (or bound for) the database, not yet decrypted.

    Deliberately not a ``str``: it cannot be shown, concatenated or serialized as if it were the value.
    """

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str):
        self.ciphertext = ciphertext

    def __str__(self) -> str:
        return "[encrypted]"

    def __repr__(self) -> str:
        return "<Sealed [encrypted]>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Sealed) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)

    def __reduce__(self):
        return (Sealed, (self.ciphertext,))


_MISSING = object()

_CODECS = {
    "text": (lambda v: str(v).encode(), lambda b: b.decode()),
    "json": (lambda v: json.dumps(v, separators=(",", ":")).encode(), lambda b: json.loads(b)),
    "date": (lambda v: v.isoformat().encode(), lambda b: datetime.date.fromisoformat(b.decode())),
    "bool": (lambda v: b"1" if v else b"0", lambda b: b == b"1"),
}


class EncryptedDescriptor(DeferredAttribute):
    """Decrypts on first read; an erased record reads as None; a missing key raises KeyUnavailable."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        field = self.field
        data = instance.__dict__
        value = data.get(field.attname, _MISSING)
        if value is _MISSING:  # deferred: DeferredAttribute loads it from the database
            value = DeferredAttribute.__get__(self, instance, cls)
        if value.__class__ is Sealed:
            try:
                raw = decrypt_value(
                    instance.encryption_data_key(), value.ciphertext, field.associated_data(instance)
                )
            except DataKeyDestroyed:
                return None
            value = data[field.attname] = field.decode(raw)
        return value

    def __set__(self, instance, value):
        # A data descriptor (unlike DeferredAttribute), so that reads always pass through __get__.
        instance.__dict__[self.field.attname] = value


class EncryptedField(models.TextField):
    """A personal value, encrypted with the owning case's data key (see ``referrals.crypto``).

    The model must provide ``encryption_data_key()``. Lookups raise ``EncryptedLookupError``
    except ``isnull``; use a blind index to search.
    """

    descriptor_class = EncryptedDescriptor

    def __init__(self, *args, codec: str = "text", **kwargs):
        if codec not in _CODECS:
            raise ValueError(f"unknown codec {codec}")
        self.codec = codec
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.codec != "text":
            kwargs["codec"] = self.codec
        return name, path, args, kwargs

    def associated_data(self, instance) -> str:
        """``app.model.field:pk`` — the ciphertext only decrypts in this very row and column."""
        pk = instance.pk
        cached = instance.__dict__.get("_aad_pk")
        if cached is None or cached[0] is not pk:
            # str(UUID) costs as much as a decryption: computed once per instance (and again if pk changes).
            cached = instance.__dict__["_aad_pk"] = (pk, str(pk))
        return f"{self._aad_prefix}{cached[1]}"

    @cached_property
    def _aad_prefix(self) -> str:
        return f"{self.model._meta.label_lower}.{self.attname}:"

    def encode(self, value) -> bytes:
        return _CODECS[self.codec][0](value)

    def decode(self, raw: bytes):
        return _CODECS[self.codec][1](raw)

    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(value)

    def to_python(self, value):
        return value

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return value
        try:
            data_key = model_instance.encryption_data_key()
        except DataKeyDestroyed:
            # The case was erased: nothing personal may be stored about the person again.
            model_instance.__dict__[self.attname] = None
            return None
        return Sealed(encrypt_value(data_key, self.encode(value), self.associated_data(model_instance)))

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, Sealed) and value.ciphertext.startswith(FIELD_PREFIX):
            return value.ciphertext
        raise EncryptedLookupError(
            "encrypted fields cannot be compared or bulk-written in the database; "
            "use a blind index to search and save() to write"
        )

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise EncryptedLookupError(
            f"lookup '{lookup_name}' on encrypted field '{self.name}' is not possible; use a blind index"
        )

    def get_transform(self, lookup_name):
        raise EncryptedLookupError(
            f"transform '{lookup_name}' on encrypted field '{self.name}' is not possible"
        )

    def value_to_string(self, obj):
        raise EncryptedLookupError("encrypted fields are never serialized by Django's serializers")


# --- ordering --------------------------------------------------------------------------------------


def _ordering_path(item) -> str | None:
    """The field path an ordering item names (``"-case__summary"``, ``F("summary")``,
    ``F("summary").desc()``), or None for other expressions."""
    if isinstance(item, models.OrderBy):
        item = item.expression
    if isinstance(item, models.F):
        return item.name
    if isinstance(item, str):
        return item.lstrip("-+")
    return None


def encrypted_field_on_path(model, path: str) -> EncryptedField | None:
    """The encrypted field that ``path`` (``case__subject__family_name``) reaches from ``model``, following
    relations, or None. Names that are not fields (annotations, ``?``) are left to Django."""
    opts = model._meta
    for part in path.split("__"):
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if isinstance(field, EncryptedField):
            return field
        if not field.is_relation or field.related_model is None:
            return None
        opts = field.related_model._meta
    return None


def encrypted_ordering_field(model, item) -> EncryptedField | None:
    """The encrypted field an ordering item (a name, ``F()`` or ``F().desc()``) sorts ``model`` by, if any."""
    path = _ordering_path(item)
    return encrypted_field_on_path(model, path) if path else None


def refuse_encrypted_ordering(model, ordering) -> None:
    """Raise ``EncryptedLookupError`` if an item of ``ordering`` sorts ``model`` by an encrypted field."""
    for item in ordering:
        field = encrypted_ordering_field(model, item)
        if field is not None:
            raise EncryptedLookupError(
                f"cannot order by encrypted field '{field.name}': ciphertext order is meaningless"
            )


class EncryptedFieldsQuerySet(models.QuerySet):
    """The queryset of every model with encrypted fields: ordering by one of them raises."""

    def order_by(self, *field_names):
        refuse_encrypted_ordering(self.model, field_names)
        return super().order_by(*field_names)

    def latest(self, *fields):
        refuse_encrypted_ordering(self.model, fields)
        return super().latest(*fields)

    def earliest(self, *fields):
        refuse_encrypted_ordering(self.model, fields)
        return super().earliest(*fields)
