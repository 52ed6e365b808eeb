"""The service directory (contract §7.2): every institution's offices, their services, languages and
whether they accept referrals now — read through ``accounts.directory`` (offices are no one's personal
data: nothing to record)."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import directory

from ..access import actor_required, offices_menu
from ..forms import DirectoryFilterForm
from ..names import province_name


@actor_required()
@require_GET
def office_directory(request):
    """``/directory/``: filters province, service, language and accepting; an invalid filter lists nothing
    (400), never everything. The institutions of the network are listed too, those hosted by a peer node
    (and their offices) marked so (contract §7.4)."""
    form = DirectoryFilterForm(request.GET or None, languages=directory.languages_offered())
    status = 200
    if not form.is_bound:
        offices = directory.offices()
    elif form.is_valid():
        offices = directory.offices(**form.filters())
    else:
        offices, status = directory.offices().none(), 400
    offices = sorted(
        offices, key=lambda o: (o.institution.code, province_name(o.province).casefold(), o.name.casefold())
    )
    context = {
        "form": form,
        "offices": offices,
        "institutions": directory.institutions(),
        "filtered": form.is_bound,
        "can_manage": offices_menu(request.actor),
    }
    return render(request, "web/directory.html", context, status=status)
