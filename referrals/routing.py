"""Routing at ``send`` (contract §7.2): a domain rule of the core, run by the ``send`` service.

A referral sent without a receiving office goes to the receiving institution's office in the referral's
``province`` that accepts referrals now and offers every service it asks for; with none (or no
province) it stays with the institution's national intake (``to_office`` null). One query.

A remote institution's referral is not routed here (contract §7.4: "routing by province happens at the
receiver's node"): the offices its node serves are known here only to be named by the sender.
"""

from __future__ import annotations

from accounts.models import Office

from .models import Referral


def office_for(referral: Referral) -> Office | None:
    """The office a referral without one is routed to at ``send``, or None (national intake). Among several
    that fit, the first by code (stable: the same referral always lands in the same office)."""
    if referral.to_office_id is not None or not referral.province:
        return None
    candidates = (
        Office.objects.accepting_now()
        .filter(institution_id=referral.to_institution_id, institution__node="", province=referral.province)
        .order_by("code")
    )
    return next((office for office in candidates if office.offers(referral.services)), None)
