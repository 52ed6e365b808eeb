"""The federation door (contract §7.4): ``/federation/v1/…`` accepts only messages signed by a pinned peer.

It translates, and decides nothing: ``federation.services.receive`` verifies (the signature before anything
else), answers replays, opens sealed bodies and dispatches to the handler of the message's type. No session,
no partner token, no CSRF (a node signature is the only credential). 404 while federation is off.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from plumbing.problems import problem_response

from . import keys, services


@csrf_exempt
def door(request, rest: str = ""):
    if not keys.enabled():
        return problem_response("not-found", 404, "Not found.")
    answer = services.receive(
        method=request.method,
        path=request.path,
        headers=dict(request.headers),
        body=request.body,
        ip=request.META.get("REMOTE_ADDR"),
        request_id=getattr(request, "request_id", ""),
    )
    response = HttpResponse(
        answer.body, status=answer.status, content_type=answer.headers.get("content-type")
    )
    for name, value in answer.headers.items():
        if name != "content-type":
            response[name] = value
    response["Cache-Control"] = "no-store"
    return response
