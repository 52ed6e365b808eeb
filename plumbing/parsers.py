"""The API's JSON parser: hostile input (deep nesting, huge numbers, NaN, bad UTF-8, repeated keys) is a 400,
never a 500."""

from __future__ import annotations

import json
import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

#: Deeper structures than this are refused before they reach a serializer.
MAX_DEPTH = 32


def _depth_ok(value, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class DuplicateKey(ValueError):
    """A JSON object names a key twice: which value was meant is unknown (a parser keeps the last)."""


def _object_without_duplicates(pairs: list) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise DuplicateKey("repeated key")
    return value


def _finite_float(text: str) -> float:
    """A JSON number that overflows a double (``1e999``) is refused, never stored as infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


class StrictJSONParser(JSONParser):
    """JSON objects and arrays of bounded depth; NaN/Infinity, invalid UTF-8, oversized numbers and an
    object repeating a key (contract §7.5) → 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            raw = stream.read() if stream is not None else b""
            text = raw.decode(encoding)
            data = json.loads(
                text,
                parse_constant=_refuse_constant,
                parse_float=_finite_float,
                object_pairs_hook=_object_without_duplicates,
            )
        except DuplicateKey:
            raise ParseError("A JSON object repeats a key.") from None
        except (ValueError, RecursionError, UnicodeDecodeError, LookupError):
            raise ParseError("Malformed JSON.") from None
        if not _depth_ok(data):
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        return data
