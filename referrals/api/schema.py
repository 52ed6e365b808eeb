"""OpenAPI post-processing: every error of every operation is documented as application/problem+json,
with an example."""

from __future__ import annotations

from plumbing.problems import problem_body

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "example": "/problems/validation-error"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Validation errors by field (nested fields as subject.phone).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail"],
}
DESCRIPTIONS = {
    "400": "Invalid request (validation-error): malformed JSON, unknown or invalid fields or parameters.",
    "401": "No, unknown, expired or revoked token (not-authenticated).",
    "403": "The token lacks the scope, or the action is reserved to the other side (permission-denied).",
    "404": "Not found, or not visible to the caller (not-found).",
    "405": "Method not allowed.",
    "406": "Not acceptable: the API speaks JSON.",
    "409": "Not allowed in the current status (invalid-transition, consent-required, case-erased) or "
    "idempotency-key-in-flight.",
    "412": "If-Match does not match the referral's ETag (precondition-failed).",
    "413": "The request body exceeds 1 MiB (payload-too-large).",
    "415": "Unsupported media type: send application/json.",
    "422": "The Idempotency-Key was used with a different request (idempotency-key-reused).",
    "429": "Too many requests (throttled); see Retry-After.",
    "500": "Server error.",
    "503": "The data cannot be decrypted with the configured keys (key-unavailable), or — for an action on a "
    "referral whose sending institution is hosted on another node — that node cannot be reached now; nothing "
    "changed (peer-unavailable).",
}
#: The problem each status stands for in the examples (its ``type`` is ``/problems/<slug>``).
EXAMPLE_SLUGS = {
    "400": (
        "validation-error",
        "The request body is invalid.",
        {"urgency": ['"soon" is not a valid choice.']},
    ),
    "401": ("not-authenticated", "Authentication credentials were not provided.", None),
    "403": ("permission-denied", "The token lacks the scope this operation needs.", None),
    "404": ("not-found", "Not found.", None),
    "405": ("method-not-allowed", 'Method "PATCH" not allowed.', None),
    "406": ("not-acceptable", "Could not satisfy the request Accept header.", None),
    "409": ("invalid-transition", "The action accept is not allowed in status cancelled.", None),
    "412": ("precondition-failed", "If-Match does not match the current version.", None),
    "413": ("payload-too-large", "The request body exceeds 1 MiB.", None),
    "415": ("unsupported-media-type", 'Unsupported media type "text/plain" in request.', None),
    "422": ("idempotency-key-reused", "This Idempotency-Key was used with a different request.", None),
    "429": ("throttled", "Request was throttled. Expected available in 12 seconds.", None),
    "500": ("server-error", "A server error occurred.", None),
    "503": ("key-unavailable", "The data cannot be decrypted with the configured keys.", None),
}
COMMON = ("400", "401", "403", "404", "405", "406", "429", "500", "503")
WRITES = ("409", "412", "413", "415", "422")
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
ETAG = {"ETag": {"schema": {"type": "string"}, "description": 'The referral\'s version, e.g. "3".'}}


def _problem_example(code: str) -> dict:
    slug, detail, errors = EXAMPLE_SLUGS.get(code, ("server-error", "Problem details.", None))
    return {slug: {"value": problem_body(slug, int(code), detail, errors)}}


def _problem(code: str) -> dict:
    response = {
        "description": DESCRIPTIONS.get(code, "Problem details."),
        "content": {"application/problem+json": {"schema": PROBLEM_REF, "examples": _problem_example(code)}},
    }
    if code == "429":
        response["headers"] = dict(RETRY_AFTER)
    return response


def problem_responses(result, generator, request, public):
    """drf-spectacular post-processing hook (SPECTACULAR_SETTINGS['POSTPROCESSING_HOOKS'])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            codes = COMMON + (WRITES if method in ("post", "put", "patch") else ())
            for code in codes:
                responses[code] = _problem(code)
            for code in list(responses):
                if code.startswith(("4", "5")):
                    responses[code] = _problem(code)
            if path.startswith("/api/v1/referrals/{id}") or (
                path == "/api/v1/referrals/" and method == "post"
            ):
                for code, response in responses.items():
                    if code.startswith("2") and "ReferralOutput" in str(response):
                        response["headers"] = dict(ETAG)
    return result
