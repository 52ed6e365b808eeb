"""WSGI-level guard around Django's application (``config/wsgi.py``): request bodies without a length.

Django reads exactly ``CONTENT_LENGTH`` bytes of a request body, and a body sent with the chunked transfer
coding (HTTP/1.1, no ``Content-Length``; gunicorn decodes the chunks into ``wsgi.input``) has none: Django
would read it as empty. This guard, a plain WSGI middleware (PEP 3333), reads such a body before Django —
at most the largest body the site accepts plus one byte — and hands it on as an ordinary body with its
length. A longer body is handed on cut at that limit plus one byte, with that length, so that the size
limits of ``plumbing.middleware.BodySizeLimitMiddleware`` refuse it (413) without reading the rest.
"""

from __future__ import annotations

import io

from django.conf import settings


def max_body_bytes() -> int:
    """The largest request body any door accepts: the API's and the web forms' (Django's own setting)."""
    return max(int(settings.API_MAX_BODY_BYTES), int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0))


def read_at_most(stream, size: int) -> bytes:
    """Up to ``size`` bytes of a WSGI input stream (which may return less than asked per read)."""
    if stream is None:
        return b""
    chunks, total = [], 0
    while total < size:
        chunk = stream.read(min(65536, size - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


class ChunkedBodyLimit:
    """Wraps a WSGI application: a chunked body reaches it length-delimited, and never more than the
    largest accepted body plus one byte is read into memory."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = read_at_most(environ.get("wsgi.input"), max_body_bytes() + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)
