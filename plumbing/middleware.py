"""Request id, request body-size limits (API and web), times in UTC and problem+json for Django's own errors
under /api/."""

from __future__ import annotations

import datetime
import logging
import re
import uuid

from django.conf import settings
from django.shortcuts import render
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


def is_machine_door(request) -> bool:
    """The partner API and the federation door (contract §7.4): answered by machines, so their errors
    before any view are problem+json, never a page."""
    return is_api(request) or request.path.startswith("/federation/")


class BodySizeLimitMiddleware:
    """Request bodies over the limit are refused before anything reads them, by their ``Content-Length``.

    API and federation door: over ``API_MAX_BODY_BYTES`` (1 MiB, contract §3) → 413 problem+json
    ``payload-too-large`` (unsigned: nothing is known of the sender before its body is read); a
    malformed ``Content-Length`` → 400. Web: over Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (1 MiB) → a 413
    page in the user's language, instead of Django's ``RequestDataTooBig`` (a bare 400 and a traceback in
    the log) once the CSRF check or the form reads the body. Placed after the web's access middleware, so
    that the page has the user and the user's language. A chunked body (no ``Content-Length``) reaches
    Django with its length through the WSGI guard of ``config/wsgi.py`` (``plumbing.wsgi``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw_length = request.META.get("CONTENT_LENGTH") or ""
        api = is_machine_door(request)
        try:
            length = int(raw_length) if raw_length else 0
        except ValueError:
            if api:
                return problem_response("validation-error", 400, "Invalid Content-Length.")
            length = 0  # Django reads such a body as empty
        web_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # None: Django's "no limit"
        if api:
            if length > settings.API_MAX_BODY_BYTES:
                return problem_response("payload-too-large", 413, "The request body exceeds 1 MiB.")
        elif web_limit is not None and length > web_limit:
            return render(request, "413.html", status=413)
        return self.get_response(request)


class ApiUtcMiddleware:
    """Times render in UTC under /api/ (contract §3: RFC 3339 UTC), whatever ``TIME_ZONE`` the web UI uses."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api(request):
            return self.get_response(request)
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
