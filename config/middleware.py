"""Request id, the API body-size limit, and problem+json for Django's own errors under /api/."""

from __future__ import annotations

import logging
import re
import uuid

from django.conf import settings

from config.problems import problem_response

logger = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (``X-Request-ID`` if well-formed, else a new one), echoed in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def is_api(request) -> bool:
    return request.path.startswith("/api/")


class ApiBodySizeLimitMiddleware:
    """Bodies over 1 MiB on the API → 413 problem+json, before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                return problem_response("payload-too-large", 413, "The request body exceeds 1 MiB.")
        return self.get_response(request)


class ApiProblemMiddleware:
    """Django's own 404/405/500 (outside DRF) under /api/ become problem+json; exceptions never leak."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not is_api(request) or response.get("Content-Type", "").startswith("application/problem+json"):
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
