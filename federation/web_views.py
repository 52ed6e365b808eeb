"""The admins' peers page (read only; included by ``web.urls`` under ``manage/peers/``, as the statistics
page is): each peer's fingerprint, institutions, last contact, messages waiting, failures and the last
checkpoint of its audit log this node witnessed. The rows come from ``federation.selectors.peer_rows``; the
page only renders them. 404 while federation is off."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from web.access import admin_required

from . import keys, selectors


@admin_required
@require_GET
def peer_list(request):
    if not keys.enabled():
        raise Http404
    return render(request, "federation/peers.html", {"peers": selectors.peer_rows(), "node": keys.node_url()})
