"""The API's JSON parser: hostile input (deep nesting, huge numbers, NaN, bad UTF-8) is a 400, never a 500."""

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


def _finite_float(text: str) -> float:
    """A JSON number that overflows a double (``1e999``) is refused, never stored as infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


class StrictJSONParser(JSONParser):
    """JSON objects and arrays of bounded depth; NaN/Infinity, invalid UTF-8 and oversized numbers → 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            raw = stream.read() if stream is not None else b""
            text = raw.decode(encoding)
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except (ValueError, RecursionError, UnicodeDecodeError, LookupError):
            raise ParseError("Malformed JSON.") from None
        if not _depth_ok(data):
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        return data
