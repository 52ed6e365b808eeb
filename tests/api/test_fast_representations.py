"""The referral representations render their values directly (the API's hot path) instead of through
DRF's per-instance copies of the declared fields. They must give exactly what the declared fields give
— the same keys in the same order, the same values, the same JSON — for every kind of referral, on
both sides, with and without personal data."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from referrals import data_rights, reads, selectors, services
from referrals.api import serializers as s


class GenericConsent(s.ConsentOutput):
    to_representation = serializers.Serializer.to_representation


class GenericListItem(s.ReferralListItemOutput):
    to_representation = serializers.Serializer.to_representation


class GenericSubject(s.SubjectOutput):
    to_representation = serializers.Serializer.to_representation


def _json(data) -> bytes:
    return JSONRenderer().render(data)


def _generic_referral(view, context) -> dict:
    """The full representation as the declared fields render it, field by field."""
    referral = view.referral
    data = dict(GenericListItem(referral, context=context).data)
    for name in ("reason", "status_reason", "outcome"):
        data[name] = (
            serializers.CharField(allow_null=True).to_representation(view.texts[name])
            if (view.texts.get(name) is not None)
            else None
        )
    data["consent"] = GenericConsent(referral.consent).data
    if view.subject is not None:
        # Every key is a declared subject field, rendered as the declared field renders it.
        generic_subject = dict(GenericSubject(view.subject).data)
        assert {k: generic_subject[k] for k in view.subject} == view.subject
    data["subject"] = view.subject
    return data


def _assert_same(actor, referral_id):
    referral = selectors.referral_visible_to(actor, referral_id)
    view = reads.referral_read(actor=actor, referral=referral)
    personal = view.personal
    context = {"actor": actor}
    fast = s.ReferralOutput(view, context=context).data
    generic = _generic_referral(view, context)
    assert list(fast.items()) == list(generic.items())
    assert _json(fast) == _json(generic)
    assert set(fast) == set(s.ReferralOutput().fields)
    fast_item = s.ReferralListItemOutput(referral, context=context).data
    generic_item = GenericListItem(referral, context=context).data
    assert list(fast_item.items()) == list(generic_item.items())
    assert _json(fast_item) == _json(generic_item)
    fast_many = s.ReferralListItemOutput([referral, referral], many=True, context=context).data
    assert _json(fast_many) == _json([generic_item, generic_item])
    return fast, personal


@pytest.fixture
def referrals_of_every_kind(iom, dp, iom_actor, dp_actor, make_referral):
    kinds = {
        "draft": make_referral(iom_actor, dp),
        "requested, identity only": make_referral(iom_actor, dp, path=[(iom_actor, "send")]),
        "accepted, every category": make_referral(
            iom_actor,
            dp,
            categories=("identity", "contact", "documents", "protection"),
            path=[(iom_actor, "send"), (dp_actor, "accept")],
        ),
        "completed with outcome": make_referral(
            iom_actor,
            dp,
            path=[
                (iom_actor, "send"),
                (dp_actor, "receive"),
                (dp_actor, "accept"),
                (dp_actor, "start"),
                (dp_actor, "complete", "Resultado: asistencia legal brindada"),
            ],
            urgency="urgent",
        ),
        "rejected with reason": make_referral(
            iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "reject", "Fuera de mandato")]
        ),
        "on hold without reason": make_referral(
            iom_actor,
            dp,
            path=[(iom_actor, "send"), (dp_actor, "accept"), (dp_actor, "start"), (dp_actor, "hold")],
        ),
    }
    withdrawn = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    services.consent_withdraw(actor=iom_actor, referral_id=withdrawn.pk, reason="La persona lo pidió")
    withdrawn.refresh_from_db()
    kinds["consent withdrawn"] = withdrawn
    erased = make_referral(iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "accept")])
    data_rights.subject_erase(case=erased.case, operator="test")
    erased.refresh_from_db()
    kinds["subject erased"] = erased
    return kinds


def test_fast_and_generic_representations_are_identical(referrals_of_every_kind, iom_actor, dp_actor):
    seen_personal = {True: 0, False: 0}
    for name, referral in referrals_of_every_kind.items():
        for actor in (iom_actor, dp_actor):
            if actor is dp_actor and referral.status == "draft":
                continue  # a draft is the sender's alone
            fast, personal = _assert_same(actor, referral.pk)
            seen_personal[personal] += 1
            assert fast["status"] == referral.status, name
    # Both projections were compared, not just one.
    assert seen_personal[True] >= 6 and seen_personal[False] >= 2, seen_personal


def test_dates_render_in_the_current_time_zone_like_drf(iom_actor, dp, make_referral):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    with timezone.override("America/Panama"):
        fast, _personal = _assert_same(iom_actor, referral.pk)
    assert fast["sent_at"].endswith("-05:00")
    with timezone.override("UTC"):
        fast_utc, _personal = _assert_same(iom_actor, referral.pk)
    assert fast_utc["sent_at"].endswith("Z")
