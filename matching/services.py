"""Linking two cases as the same person (no destructive merge) and undoing it: audited writes."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.actor import Actor
from accounts.choices import Scope
from audit.recorder import record
from referrals import policy
from referrals.errors import Forbidden, InvalidInput, NotVisible
from referrals.models import Case
from referrals.selectors import cases_visible_to

from .models import CaseLink


def _visible(actor: Actor, case_id) -> Case:
    case = cases_visible_to(actor).filter(pk=case_id).first()
    if case is None:
        raise NotVisible()
    return case


@transaction.atomic
def case_link(*, actor: Actor, case: Case, other: Case) -> CaseLink:
    """Record that ``case`` and ``other`` (both visible to the actor, same institution) are one person."""
    if not actor.has_scope(Scope.REFERRALS_WRITE):
        raise Forbidden(f"This account lacks the scope {Scope.REFERRALS_WRITE}.")
    first, second = sorted([_visible(actor, case.pk), _visible(actor, other.pk)], key=lambda c: str(c.pk))
    if first.pk == second.pk:
        raise InvalidInput({"other": ["A case cannot be linked to itself."]})
    if CaseLink.objects.filter(case_a=first, case_b=second, unlinked_at__isnull=True).exists():
        raise InvalidInput({"other": ["These cases are already linked."]})
    try:
        with transaction.atomic():
            link = CaseLink.objects.create(
                institution=actor.institution, case_a=first, case_b=second, created_by=actor.user
            )
    except IntegrityError:
        raise InvalidInput({"other": ["These cases are already linked."]}) from None
    _record_link(actor, "case.linked", link)
    return link


@transaction.atomic
def case_unlink(*, actor: Actor, link_id) -> CaseLink:
    """Undo a link (supervisors of the institution only)."""
    link = (
        CaseLink.objects.select_for_update()
        .filter(pk=link_id, institution=actor.institution, unlinked_at__isnull=True)
        .first()
    )
    if link is None:
        raise NotVisible()
    _visible(actor, link.case_a_id)
    policy.require_unlink_cases(actor)
    link.unlinked_at = timezone.now()
    link.unlinked_by = actor.user
    link.save(update_fields=["unlinked_at", "unlinked_by"])
    _record_link(actor, "case.unlinked", link)
    return link


def _record_link(actor: Actor, action: str, link: CaseLink) -> None:
    """``case.linked`` / ``case.unlinked``: the link and its two cases' references (never the person)."""
    first, second = link.case_a, link.case_b
    record(
        actor=actor,
        action=action,
        object_type="case",
        object_id=first.pk,
        case_id=first.pk,
        institutions=[actor.institution],
        detail={"link": str(link.pk), "cases": [first.reference, second.reference]},
    )


def links_of(actor: Actor, case: Case) -> list[CaseLink]:
    """The active links of a case, to cases the actor may see."""
    visible = cases_visible_to(actor).values("pk")
    return list(
        CaseLink.objects.filter(Q(case_a=case) | Q(case_b=case), unlinked_at__isnull=True)
        .filter(case_a__in=visible, case_b__in=visible)
        .select_related("case_a", "case_b", "created_by")
        .order_by("created_at")
    )
