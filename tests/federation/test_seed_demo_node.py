"""``seed_demo_node --referrals`` (the two-node demonstration's referrals; the real thing across two nodes is
``test_run_federation``): IOM's part refuses before the Defensoría's card is pinned, then refers and sends
the demo cases, each consented projection queued for the Defensoría's node, once; the Defensoría's part
refuses while IOM's referrals have not arrived."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from federation import services
from federation.models import Outgoing
from referrals.models import Referral


def _run(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo_node", *args, stdout=out)
    return out.getvalue()


def test_iom_sends_its_demo_referrals_to_the_remote_defensoria_once(node, remote):
    _run("IOM")
    with pytest.raises(CommandError, match="pin the Defensoría's node's card first"):
        _run("IOM", "--referrals")
    assert not Referral.objects.exists()

    services.pin_peer(remote.card)  # DP becomes a remote institution here
    output = _run("IOM", "--referrals")
    referrals = list(Referral.objects.select_related("consent", "to_institution").order_by("created_at"))
    assert len(referrals) == 3 and all(r.reference in output for r in referrals)
    assert {r.status for r in referrals} == {"requested"}
    assert {r.to_institution.node for r in referrals} == {remote.url}
    assert len({tuple(r.consent.data_categories) for r in referrals}) == 3  # varied consent
    assert len({tuple(r.services) for r in referrals}) == 3
    queued = Outgoing.objects.filter(type="referral.deliver")
    assert sorted(queued.values_list("referral_id", flat=True)) == sorted(r.pk for r in referrals)

    assert "already sent" in _run("IOM", "--referrals")
    assert Referral.objects.count() == 3 and queued.count() == 3


def test_the_defensoria_refuses_to_act_before_iom_referrals_arrived(node):
    _run("DP")
    with pytest.raises(CommandError, match="0 of IOM's 3 demo referrals have arrived"):
        _run("DP", "--referrals", "--wait", "0")
