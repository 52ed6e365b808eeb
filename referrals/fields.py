"""Encrypted model fields: ciphertext in the column, plaintext only in memory, bound to model/field/pk.

What the database can do with an encrypted column, and what it cannot:

* ``filter``/``exclude``/``get`` with any lookup or transform but ``isnull`` raise ``EncryptedLookupError``
  (a comparison with ciphertext would silently match nothing): search through a blind index instead.
* ``order_by("field")`` (also across relations, and descending) raises too: ciphertext order is random,
  so an ordering by it would be silently wrong. (An ``F()`` expression is not intercepted: expressions
  over an encrypted column see only ciphertext — never write them.)
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
import sys
from functools import cached_property

from django.db import models
from django.db.models.expressions import Col, OrderBy
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


class EncryptedCol(Col):
    """The column of an encrypted field: selecting it loads ``Sealed`` tokens; ordering by it raises."""

    def resolve_expression(self, *args, **kwargs):
        # Lookups resolve their column too (``isnull`` must keep working): only an ORDER BY is refused.
        # The ordering compiler resolves ``OrderBy(column)``, whose ``resolve_expression`` resolves its
        # column (from a list comprehension: one more frame before Python 3.12).
        if isinstance(_resolving_parent(), OrderBy):
            raise EncryptedLookupError(
                f"cannot order by encrypted field '{self.target.name}': ciphertext order is meaningless"
            )
        return super().resolve_expression(*args, **kwargs)


def _resolving_parent():
    """The expression whose ``resolve_expression`` called ours (None when called from elsewhere)."""
    frame = sys._getframe(2)
    for _depth in range(2):
        if frame is None:
            return None
        if frame.f_code.co_name == "resolve_expression":
            return frame.f_locals.get("self")
        frame = frame.f_back
    return None


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

    def get_col(self, alias, output_field=None):
        if output_field is None:
            output_field = self
        if alias == self.model._meta.db_table and output_field is self:
            # Django caches the plain column of a field on its model's table (``cached_col``).
            return EncryptedCol(alias, self)
        return EncryptedCol(alias, self, output_field)

    @cached_property
    def cached_col(self):
        return EncryptedCol(self.model._meta.db_table, self)

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
