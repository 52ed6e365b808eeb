"""A built data set for the statistics (contract §6.4, §7.5), made through the real services.

In March 2026 (UTC), seen from IOM and from the Defensoría (DP):

* ``accepted`` — 6 × IOM → DP, a woman from VEN born 1990 (30-59 when sent), consent with ``identity``,
  services legal_assistance + protection, normal urgency, accepted 1, 2, 3, 4, 5 and 6 hours after sending;
* ``minors`` — 2 × IOM → DP, a boy from COL born 2012 (12-17, ``is_minor``), consent ``contact`` only
  (no ``identity``: DP counts their sex, nationality, age band and minor flag as ``unknown``),
  child_protection, urgent, still requested;
* ``inbound`` — 1 × DP → IOM, a woman from VEN born 1950 (60+), consent with ``identity``, health,
  emergency, still requested;
* not counted: one IOM → DP referral voided (entered-in-error), one left as a draft, one sent in April.

The third institution (UNHCR) sent and received nothing.
"""

from __future__ import annotations

import datetime

import pytest

from accounts.actor import actor_for_user
from referrals.lifecycle import TRANSITIONS
from referrals.models import Referral, ReferralEvent
from reporting.perturbation import cell_key, published_count
from tests.builders import referral_through_services
from tests.factories import subject_data
from tests.web.conftest import iom_supervisor_client  # noqa: F401 — the statistics page's suites use it

MARCH = datetime.datetime(2026, 3, 10, 9, 0, tzinfo=datetime.UTC)
PERSON_NAMES = ["Zuleikaxq", "Quintanar-Abadiaxq", "Yosmarxq", "Ortegaxq", "Florindaxq"]
DOCUMENTS = ["XK4471882Q", "CO99887766", "VE55443322"]


@pytest.fixture
def refer():
    """``refer(sender, receiver, to, subject=..., categories=..., services=..., urgency=..., path=...,
    province=...)``."""

    def make(
        sender,
        receiver,
        to,
        *,
        subject,
        categories=("identity",),
        services_=("legal_assistance",),
        urgency="normal",
        path=("send",),
        supervisor=None,
        province="",
    ):
        steps = []
        for action in path:
            actor = {"send": sender, "cancel": sender, "void": supervisor}.get(action, receiver)
            # The lifecycle table says which actions need a text (a reason, or an outcome to complete).
            steps.append((actor, action, "Motivo") if TRANSITIONS[action].needs else (actor, action))
        return referral_through_services(
            sender=sender,
            to=to,
            path=steps,
            categories=categories,
            urgency=urgency,
            requested=services_,
            reason="Motivo secreto de la remisión",
            subject=subject_data(**subject),
            summary="Resumen secreto",
            province=province,
        )

    return make


def sent_at(referral, when: datetime.datetime, *, answered_after_hours: float | None = None) -> None:
    """Move a referral's sending (and its answer) to a chosen time: the figures depend on it."""
    Referral.objects.filter(pk=referral.pk).update(sent_at=when)
    if answered_after_hours is not None:
        ReferralEvent.objects.filter(referral=referral, action__in=("accept", "reject")).update(
            at=when + datetime.timedelta(hours=answered_after_hours)
        )


@pytest.fixture
def dataset(iom, dp, third, iom_actor, dp_actor, iom_supervisor, refer):
    woman = {
        "given_name": PERSON_NAMES[0],
        "family_name": PERSON_NAMES[1],
        "document_number": DOCUMENTS[0],
        "sex": "female",
        "nationality": "VEN",
        "date_of_birth": datetime.date(1990, 5, 1),
        "is_minor": False,
    }
    boy = {
        "given_name": PERSON_NAMES[2],
        "family_name": PERSON_NAMES[3],
        "document_number": DOCUMENTS[1],
        "sex": "male",
        "nationality": "COL",
        "date_of_birth": datetime.date(2012, 1, 1),
        "is_minor": True,
    }
    elder = {
        "given_name": PERSON_NAMES[4],
        "family_name": PERSON_NAMES[1],
        "document_number": DOCUMENTS[2],
        "sex": "female",
        "nationality": "VEN",
        "date_of_birth": datetime.date(1950, 1, 1),
        "is_minor": False,
    }
    built = {"accepted": [], "minors": [], "inbound": [], "not_counted": []}
    for hours in range(1, 7):
        referral = refer(
            iom_actor,
            dp_actor,
            dp,
            subject=woman,
            services_=("legal_assistance", "protection"),
            path=("send", "accept"),
        )
        sent_at(referral, MARCH + datetime.timedelta(days=hours), answered_after_hours=hours)
        built["accepted"].append(referral)
    for when in (
        datetime.datetime(2026, 3, 1, 0, 0, tzinfo=datetime.UTC),
        MARCH,
    ):  # the period's first instant
        referral = refer(
            iom_actor,
            dp_actor,
            dp,
            subject=boy,
            categories=("contact",),
            services_=("child_protection",),
            urgency="urgent",
        )
        sent_at(referral, when)
        built["minors"].append(referral)
    referral = refer(dp_actor, iom_actor, iom, subject=elder, services_=("health",), urgency="emergency")
    sent_at(
        referral, datetime.datetime(2026, 3, 31, 23, 59, 59, tzinfo=datetime.UTC)
    )  # the period's last second
    built["inbound"].append(referral)
    voided = refer(
        iom_actor,
        dp_actor,
        dp,
        subject=woman,
        path=("send", "void"),
        supervisor=actor_for_user(iom_supervisor),
    )
    sent_at(voided, MARCH)
    draft = refer(iom_actor, dp_actor, dp, subject=woman, path=())
    april = refer(iom_actor, dp_actor, dp, subject=woman)
    sent_at(april, datetime.datetime(2026, 4, 1, 0, 0, tzinfo=datetime.UTC))
    built["not_counted"] += [voided, draft, april]
    return built


@pytest.fixture
def min_cell_2(settings):
    """The statistics suppress cells below 2 (instead of the configured minimum)."""
    settings.STATISTICS_MIN_CELL = 2


@pytest.fixture
def stats_api(api_as):
    """``stats_api(institution)`` → an API client whose token holds only ``statistics:read``."""

    def make(institution):
        return api_as(institution, ["statistics:read"])

    return make


def published(cells: dict, min_cell: int) -> dict:
    """``{key: published count}`` of the cells made of these referrals (``{key: [referral, …]}``): their true
    count perturbed with their cell key (contract §7.5); cells published as 0 are left out, as in a
    response. The perturbation itself is checked in ``test_perturbation.py``; this checks which referrals
    each cell of a response holds."""
    out = {}
    for key, referrals in cells.items():
        count = published_count(len(referrals), cell_key(r.record_key for r in referrals), min_cell)
        if count:
            out[key] = count
    return out
