"""Request id, the API body-size limit, and problem+json for Django's own errors under /api/."""

from __future__ import annotations

import datetime
import io
import logging
import re
import uuid

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.utils import timezone, translation

from plumbing.problems import problem_response

logger = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (``X-Request-ID`` if well-formed, else a new one), echoed in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def is_api(request) -> bool:
    return request.path.startswith("/api/")


def _read_at_most(stream, size: int) -> bytes:
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


class ApiBodySizeLimitMiddleware:
    """API requests: bodies over 1 MiB → 413 problem+json before anything reads them, and times in UTC.

    A body without ``Content-Length`` (chunked) is read here, at most 1 MiB + 1 byte, and handed on
    with its length; more than 1 MiB is a 413. Times render in UTC under /api/ (contract §3: RFC 3339
    UTC), whatever ``TIME_ZONE`` the web UI uses.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api(request):
            return self.get_response(request)
        limit = settings.API_MAX_BODY_BYTES
        raw_length = request.META.get("CONTENT_LENGTH") or ""
        try:
            length = int(raw_length) if raw_length else None
        except ValueError:
            return problem_response("validation-error", 400, "Invalid Content-Length.")
        if length is not None and length > limit:
            return problem_response("payload-too-large", 413, "The request body exceeds 1 MiB.")
        if length is None and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = _read_at_most(request.META.get("wsgi.input"), limit + 1)
            if len(body) > limit:
                return problem_response("payload-too-large", 413, "The request body exceeds 1 MiB.")
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))
            request._read_started = False
        with timezone.override(datetime.UTC):
            return self.get_response(request)


class ApiProblemMiddleware:
    """Under /api/: every text in English (DRF's own messages too), every response ``Cache-Control:
    no-store`` (they carry personal data), and Django's own 404/405/500 (outside DRF) as problem+json;
    exceptions never leak."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api(request):
            return self.get_response(request)
        with translation.override("en"):
            response = self._as_problem(self.get_response(request))
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _as_problem(response):
        if response.get("Content-Type", "").startswith("application/problem+json"):
            return response
        if response.status_code == 404:
            return problem_response("not-found", 404, "Not found.")
        if response.status_code == 405:
            return problem_response(
                "method-not-allowed", 405, "Method not allowed.", Allow=response.get("Allow", "")
            )
        if response.status_code == 413:
            return problem_response("payload-too-large", 413, "The request body exceeds 1 MiB.")
        if response.status_code == 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return problem_response("validation-error", 400, "Bad request.")
        if response.status_code >= 500:
            return problem_response("server-error", 500, "An unexpected error occurred.")
        return response

    def process_exception(self, request, exception):
        from django.core.exceptions import RequestDataTooBig

        if not is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return problem_response("payload-too-large", 413, "The request body exceeds 1 MiB.")
        logger.error(
            "unhandled error under /api/ (%s), request %s", type(exception).__name__, request.request_id
        )
        return problem_response("server-error", 500, "An unexpected error occurred.")
