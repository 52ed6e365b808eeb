"""RFC 9457 problem details: one shape for every API error (contract §3)."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

TITLES = {
    "validation-error": "Invalid request",
    "not-authenticated": "Authentication required",
    "permission-denied": "Permission denied",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "not-acceptable": "Not acceptable",
    "unsupported-media-type": "Unsupported media type",
    "invalid-transition": "Action not allowed in the current status",
    "consent-required": "Consent required",
    "office-not-accepting": "The office is not accepting referrals",
    "case-erased": "The case's subject was erased",
    "precondition-failed": "Precondition failed",
    "precondition-required": "Precondition required",
    "idempotency-key-reused": "Idempotency key reused with a different request",
    "idempotency-key-in-flight": "A request with this idempotency key is still running",
    "payload-too-large": "Payload too large",
    "throttled": "Too many requests",
    "key-unavailable": "Encryption key unavailable",
    "audit-tree-unavailable": "Audit tree unavailable",
    "peer-unavailable": "The referral's authority cannot be reached",
    "server-error": "Server error",
}


class ProblemError(Exception):
    """A domain error with its contract slug and HTTP status: a plain exception (not DRF's), raised by the
    core and mapped by each door — problem+json by the API's handler, a message or a page by the web."""

    def __init__(self, slug: str, status_code: int, detail: str, errors: dict | None = None):
        super().__init__(detail)
        self.slug = slug
        self.status_code = status_code
        self.detail = detail
        self.errors = errors


def _valid_unicode(text) -> str:
    """Error messages may echo input: a lone surrogate becomes U+FFFD so the body is valid Unicode."""
    text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def problem_body(slug: str, status_code: int, detail: str, errors: dict | None = None) -> dict:
    body = {
        "type": f"/problems/{slug}",
        "title": TITLES.get(slug, slug),
        "status": status_code,
        "detail": _valid_unicode(detail),
    }
    if errors:
        body["errors"] = {
            _valid_unicode(field): [_valid_unicode(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for field, msgs in errors.items()
        }
    return body


def problem_response(slug: str, status_code: int, detail: str, errors: dict | None = None, **headers):
    """A plain Django JsonResponse with the problem body, for middleware and Django's own handlers."""
    response = JsonResponse(
        problem_body(slug, status_code, detail, errors), status=status_code, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def flatten_errors(data, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error dict → ``{"subject.phone": ["..."]}`` (contract §3)."""
    flat: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = "non_field_errors" if key == "non_field_errors" and not prefix else f"{prefix}{key}"
            if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
                flat.update(flatten_errors(value, f"{name}."))
            else:
                flat.setdefault(name, []).extend(
                    str(v) for v in (value if isinstance(value, list) else [value])
                )
    elif isinstance(data, list):
        for index, item in enumerate(data):
            if isinstance(item, dict | list):
                if item:
                    flat.update(flatten_errors(item, f"{prefix}{index}."))
            else:
                flat.setdefault(prefix.rstrip(".") or "non_field_errors", []).append(str(item))
    else:
        flat.setdefault(prefix.rstrip(".") or "non_field_errors", []).append(str(data))
    return flat


def _slug_for(exc: exceptions.APIException) -> str:
    return {
        exceptions.ValidationError: "validation-error",
        exceptions.ParseError: "validation-error",
        exceptions.NotAuthenticated: "not-authenticated",
        exceptions.AuthenticationFailed: "not-authenticated",
        exceptions.PermissionDenied: "permission-denied",
        exceptions.NotFound: "not-found",
        exceptions.MethodNotAllowed: "method-not-allowed",
        exceptions.NotAcceptable: "not-acceptable",
        exceptions.UnsupportedMediaType: "unsupported-media-type",
        exceptions.Throttled: "throttled",
    }.get(type(exc), "server-error" if exc.status_code >= 500 else "validation-error")


def exception_handler(exc, context):
    """DRF exception handler that answers every error as problem+json, and never leaks internals."""
    _force_json(context.get("request"))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif getattr(exc, "problem", None):
        # A lower layer's error that knows its problem (e.g. referrals.crypto.KeyUnavailable → 503).
        slug, status_code, detail = exc.problem
        return _response(problem_body(slug, status_code, detail), status_code)

    if isinstance(exc, ProblemError):
        return _response(
            problem_body(exc.slug, exc.status_code, str(exc.detail), exc.errors), exc.status_code
        )
    if not isinstance(exc, exceptions.APIException):
        logger.exception("unhandled API error (%s)", type(exc).__name__)
        return _response(problem_body("server-error", 500, "An unexpected error occurred."), 500)

    slug = _slug_for(exc)
    errors = None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        detail = "The request body is invalid."
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else exc.default_detail
    if slug == "not-authenticated":
        exc.status_code = status.HTTP_401_UNAUTHORIZED
    response = _response(problem_body(slug, exc.status_code, detail, errors), exc.status_code)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(int(exc.wait) + 1)
    if slug == "not-authenticated":
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _force_json(request) -> None:
    """Problems are JSON whatever the view's renderers (the schema view also speaks YAML) or ``Accept``."""
    if request is None:
        return
    from rest_framework.renderers import JSONRenderer

    request.accepted_renderer = JSONRenderer()
    request.accepted_media_type = PROBLEM_CONTENT_TYPE


def _response(body: dict, status_code: int) -> Response:
    response = Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    return response
