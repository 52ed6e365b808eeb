"""Entity tags and ``If-Match`` (RFC 9110 §8.8.3, §13.1.1): one parser for every door and resource."""

from __future__ import annotations

from django.utils.http import parse_etags, quote_etag


def etag_of(version: int | str) -> str:
    """The strong ETag of a version: ``"3"``."""
    return quote_etag(str(version))


def if_match_satisfied(header: str | None, current_etag: str) -> bool:
    """Whether an ``If-Match`` header allows a write on a resource whose ETag is ``current_etag``.

    Absent → yes. ``*`` → yes. Otherwise a comma-separated list of entity tags, matched with the strong
    comparison: a weak tag (``W/"3"``) never matches, and neither does a malformed header.
    """
    if header is None:
        return True
    tags = parse_etags(header.strip())
    if "*" in tags:
        return True
    return current_etag in tags
