"""Encrypted model fields: ciphertext in the column, plaintext only in memory, bound to model/field/pk."""

from __future__ import annotations

import datetime
import json

from django.db import models
from django.db.models.query_utils import DeferredAttribute

from .crypto import DataKeyDestroyed, decrypt_value, encrypt_value


class EncryptedLookupError(TypeError):
    """Raised for any lookup on an encrypted field: it would silently match nothing."""


class Sealed(str):
    """A ciphertext as loaded from the database, not yet decrypted."""

    __slots__ = ()


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
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            field = self.field
            try:
                raw = decrypt_value(instance.encryption_data_key(), value, field.associated_data(instance))
            except DataKeyDestroyed:
                return None
            value = field.decode(raw)
            instance.__dict__[field.attname] = value
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
        return f"{instance._meta.label_lower}.{self.attname}:{instance.pk}"

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
        return encrypt_value(
            model_instance.encryption_data_key(), self.encode(value), self.associated_data(model_instance)
        )

    def get_prep_value(self, value):
        if value is None or isinstance(value, Sealed) or (isinstance(value, str) and value.startswith("e1:")):
            return value
        raise EncryptedLookupError("encrypted fields cannot be compared in the database; use a blind index")

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
