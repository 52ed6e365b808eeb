"""A draft is the sender's alone, in every audit event about it: reading it (the detail, the outbound list,
the printable sheet) names the receiving institution only once the referral was sent — one rule
(``referrals.selectors.parties``) for reads, writes and refusals alike."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from referrals import reads, selectors
from tests.api.helpers import API

EVENTS = f"{API}/audit/events/"


def _codes(event) -> set[str]:
    return {code for code in event.institutions.split(",") if code}


@pytest.mark.django_db
def test_reading_a_draft_leaves_the_receiver_out_of_the_event(iom, dp, make_referral, iom_actor, api_as):
    draft = make_referral(iom_actor, dp)
    api_as(iom).get(f"{API}/referrals/{draft.pk}/")
    reads.referral_rows_read(
        iom_actor, [selectors.referral_visible_to(iom_actor, draft.pk)], list_name="outbound"
    )
    reads.referral_sheet_read(actor=iom_actor, referral_id=draft.pk)
    events = AuditEvent.objects.filter(
        action__in=["referral.viewed", "referral.list_viewed", "referral.printed"]
    )
    assert {e.action for e in events} == {"referral.viewed", "referral.list_viewed", "referral.printed"}
    assert all(_codes(e) == {"IOM"} for e in events)
    # The receiver's auditors see nothing of the draft.
    seen = api_as(dp).get(EVENTS, {"object_id": str(draft.pk)}).json()["results"]
    assert seen == []


@pytest.mark.django_db
def test_once_sent_both_institutions_see_the_read(iom, dp, make_referral, iom_actor, api_as):
    sent = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    api_as(iom).get(f"{API}/referrals/{sent.pk}/")
    viewed = AuditEvent.objects.get(action="referral.viewed")
    assert _codes(viewed) == {"IOM", "DP"}
