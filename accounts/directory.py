"""The service directory (contract §7.2): offices of every institution, read by any door (the partner API's
``/offices/``, the web's directory, the HSDS export). Offices are no one's personal data."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_migrate, post_save
from django.utils import timezone

from .choices import Province
from .models import Institution, Office, accepting_now_q


def offices(
    *,
    institution: str | None = None,
    service: str | None = None,
    province: str | None = None,
    accepting: bool | None = None,
    today=None,
    language: str | None = None,
) -> QuerySet[Office]:
    """Offices, with their institution, filtered by institution CODE, an offered service code, a province
    code, whether they accept referrals now (``accepting_now_q``) and a language they serve in. Values
    are the caller's checked codes.

    ``service`` and ``language`` are matched in Python over the (few) offices left by the other filters:
    a JSON list's containment is not portable across the databases the project runs on."""
    query = Office.objects.select_related("institution")
    if institution is not None:
        query = query.filter(institution__code=institution)
    if province is not None:
        query = query.filter(province=province)
    if accepting is not None:
        condition = accepting_now_q(today or timezone.localdate())
        query = query.filter(condition) if accepting else query.exclude(condition)
    if service is not None:
        query = query.filter(
            pk__in=[o.pk for o in query.select_related(None).only("pk", "services") if o.offers([service])]
        )
    if language is not None:
        ids = [pk for pk, codes in query.values_list("pk", "languages") if language in (codes or [])]
        query = query.filter(pk__in=ids)
    return query


def institutions() -> QuerySet[Institution]:
    """Every institution of the network by code: this node's and the remote ones (``node``: the peer node
    hosting it, contract §7.4)."""
    return Institution.objects.order_by("code")


def local_institution_names() -> list[tuple[str, str]]:
    """``(code, name)`` of the institutions hosted by this node: what its peers show for them (a card
    carries codes only)."""
    return list(Institution.objects.local().order_by("code").values_list("code", "name"))


def local_offices() -> QuerySet[Office]:
    """The offices of the institutions hosted by this node, in (institution, code) order: what this node
    serves its peers (``federation.directory``); a remote institution's offices are its own node's."""
    return (
        Office.objects.select_related("institution")
        .filter(institution__node="")
        .order_by("institution__code", "code")
    )


def languages_offered() -> list[str]:
    """Every language code some office serves in (the directory's language filter offers these)."""
    found: set[str] = set()
    for codes in Office.objects.values_list("languages", flat=True):
        found.update(codes or [])
    return sorted(found)


def office_of(institution_id, code: str) -> Office | None:
    """The office with ``code`` of an institution, or None."""
    if not isinstance(code, str):
        return None
    return (
        Office.objects.select_related("institution").filter(institution_id=institution_id, code=code).first()
    )


def nearest_first(found, province: str | None) -> list[Office]:
    """``found`` (offices) nearest first, as the web's referral form offers them: the offices in
    ``province`` first, then the others by the name of their province (alphabetically), then by the
    office's name. "Nearest" is kept this simple on purpose: a province is where a person can travel to;
    distances between provinces are not modelled."""
    labels = dict(Province.choices)

    def key(office: Office):
        return (office.province != province, labels.get(office.province, office.province), office.name)

    return sorted(found, key=key)


def offices_offering(institution, services, *, province: str | None = None) -> list[Office]:
    """The offices of ``institution`` that offer every one of ``services``, nearest ``province`` first
    (``nearest_first``) — paused ones included: a door shows them marked, and never lets them be chosen
    (``Office.is_accepting``; the ``send`` service refuses them with 409 ``office-not-accepting``)."""
    found = [o for o in offices().filter(institution=institution) if o.offers(services)]
    return nearest_first(found, province)


#: ``office id → code``, per process: what a referral's representation shows of its offices.
_codes: dict[int, str] = {}


def office_code(office_id) -> str | None:
    """The code of the office ``office_id`` (None for None), remembered per process: one query on a miss
    (every office's code), none after. A referral's representation needs only its offices' codes; joining
    the offices to its row cost every read and list page two tables and 24 columns (docs/performance.md,
    issue 20). An office's code never changes (it names it) and an office is never deleted; when an office
    is saved or deleted, or the database migrated (tests reuse ids after a rollback or a flush), the map is
    dropped (signals below)."""
    if office_id is None:
        return None
    code = _codes.get(office_id)
    if code is None:
        _codes.update(Office.objects.values_list("id", "code"))
        code = _codes.get(office_id)
    return code


def clear_office_codes(**_kwargs) -> None:
    _codes.clear()


for _signal in (post_save, post_delete):
    _signal.connect(
        clear_office_codes, sender=Office, weak=False, dispatch_uid=f"office-codes-{_signal is post_save}"
    )
post_migrate.connect(clear_office_codes, weak=False, dispatch_uid="office-codes-migrate")
