"""Statistics by receiving office and by province (contract §7.2 on §6.4, protected as §7.5): the keys,
routing at send and by ``route`` reflected (no stale cache), and the same perturbation as every dimension.

In March 2026, with the Defensoría's offices Darién (PA-5) and Chiriquí (PA-4), both offering
legal_assistance and protection:

* ``darien`` — 4 × IOM → DP, legal_assistance, province PA-5: routed at send to DP/DARIEN;
* ``national`` — 3 × IOM → DP, child_protection, province PA-5: no office offers it → DP's national intake;
* ``nowhere`` — 2 × IOM → DP, legal_assistance, no province → national intake, province ``unknown``;
* ``chiriqui`` — 2 × IOM → DP, legal_assistance, province PA-4: routed at send to DP/CHIRIQUI;
* ``inbound`` — 1 × DP → IOM, health, province PA-8: IOM has no office → IOM's national intake.
"""

from __future__ import annotations

import json

import pytest
from django.utils import translation

from accounts.actor import actor_for_user
from accounts.choices import Role
from referrals import services
from referrals.errors import Forbidden
from reporting.presentation import dimension_label, value_label
from reporting.reads import referral_statistics
from reporting.statistics import DIMENSIONS, parse_query
from tests.offices.conftest import make_office

from .conftest import MARCH, published, sent_at
from .test_api import counts, get

PERSON = {"sex": "female", "nationality": "VEN", "is_minor": False}


@pytest.fixture
def offices_dataset(dp, iom_actor, dp_actor, refer):
    darien = make_office(dp, "DARIEN", "PA-5")
    chiriqui = make_office(dp, "CHIRIQUI", "PA-4")
    built = {"darien": [], "national": [], "nowhere": [], "chiriqui": [], "inbound": []}
    plan = [
        ("darien", 4, ("legal_assistance",), "PA-5"),
        ("national", 3, ("child_protection",), "PA-5"),
        ("nowhere", 2, ("legal_assistance",), ""),
        ("chiriqui", 2, ("legal_assistance",), "PA-4"),
    ]
    for name, n, requested, province in plan:
        for _ in range(n):
            referral = refer(iom_actor, dp_actor, dp, subject=PERSON, services_=requested, province=province)
            sent_at(referral, MARCH)
            built[name].append(referral)
    referral = refer(
        dp_actor,
        iom_actor,
        dp.__class__.objects.get(code="IOM"),
        subject=PERSON,
        services_=("health",),
        province="PA-8",
    )
    sent_at(referral, MARCH)
    built["inbound"].append(referral)
    # Routing at send put them where §7.2 says (the statistics below count what the core did).
    assert {r.to_office_id for r in built["darien"]} == {darien.pk}
    assert {r.to_office_id for r in built["chiriqui"]} == {chiriqui.pk}
    assert {r.to_office_id for r in built["national"] + built["nowhere"] + built["inbound"]} == {None}
    built["offices"] = {"darien": darien, "chiriqui": chiriqui}
    return built


def test_the_dimensions_are_known_to_the_parser():
    assert DIMENSIONS[-2:] == ("to_office", "province")
    query = parse_query({"from": ["2026-03-01"], "to": ["2026-03-31"], "by": ["to_office,province"]})
    assert query.by == ("to_office", "province")


def test_to_office_keys_for_the_receiver_and_the_sender(offices_dataset, stats_api, dp, iom, min_cell_2):
    d = offices_dataset
    expected = published(
        {
            "DP/DARIEN": d["darien"],
            "DP/CHIRIQUI": d["chiriqui"],
            "DP": d["national"] + d["nowhere"],  # national intake: the institution's code alone
            "IOM": d["inbound"],
        },
        2,
    )
    assert counts(get(stats_api(dp), "to_office")) == expected
    # The sender counts the same referrals under the same keys (it sees the office in the representation).
    assert counts(get(stats_api(iom), "to_office")) == expected


def test_province_keys_with_unknown_when_none(offices_dataset, stats_api, dp, min_cell_2):
    d = offices_dataset
    assert counts(get(stats_api(dp), "province")) == published(
        {
            "PA-5": d["darien"] + d["national"],
            "PA-4": d["chiriqui"],
            "PA-8": d["inbound"],
            "unknown": d["nowhere"],
        },
        2,
    )


def test_two_dimensions_office_by_province(offices_dataset, stats_api, dp, min_cell_2):
    d = offices_dataset
    assert counts(get(stats_api(dp), "to_office,province")) == published(
        {
            ("DP/DARIEN", "PA-5"): d["darien"],
            ("DP", "PA-5"): d["national"],
            ("DP", "unknown"): d["nowhere"],
            ("DP/CHIRIQUI", "PA-4"): d["chiriqui"],
            ("IOM", "PA-8"): d["inbound"],
        },
        2,
    )


def test_routing_moves_the_count_and_no_stale_figure_is_served(
    offices_dataset, stats_api, dp, dp_actor, min_cell_2
):
    d = offices_dataset
    client = stats_api(dp)
    get(client, "to_office")  # cached now
    moved = d["chiriqui"][0]
    services.referral_route(actor=dp_actor, referral_id=moved.pk, to_office="DARIEN")
    assert counts(get(client, "to_office")) == published(
        {
            "DP/DARIEN": [*d["darien"], moved],
            "DP/CHIRIQUI": d["chiriqui"][1:],
            "DP": d["national"] + d["nowhere"],
            "IOM": d["inbound"],
        },
        2,
    )


def test_the_same_protection_as_every_dimension(offices_dataset, stats_api, dp):
    """At the default min_cell 5: no published count between 1 and 4 (Chiriquí's 2 and IOM's 1 are
    published as 0 or at least 5), every count the cell-key figure, ``suppressed`` always false."""
    d = offices_dataset
    for by, cells in (
        (
            "to_office",
            {
                "DP/DARIEN": d["darien"],
                "DP/CHIRIQUI": d["chiriqui"],
                "DP": d["national"] + d["nowhere"],
                "IOM": d["inbound"],
            },
        ),
        (
            "province",
            {
                "PA-5": d["darien"] + d["national"],
                "PA-4": d["chiriqui"],
                "PA-8": d["inbound"],
                "unknown": d["nowhere"],
            },
        ),
    ):
        body = get(stats_api(dp), by).json()
        assert body["protection"] == "cell_key" and body["max_adjustment"] == 2
        assert not any(1 <= row["count"] <= 4 for row in body["rows"])
        assert counts(get(stats_api(dp), by)) == published(cells, 5)
        everything = [r for group in cells.values() for r in group]
        assert body["total"] == published({"total": everything}, 5)["total"]


def test_an_office_caseworker_is_refused_like_any_caseworker(offices_dataset, dp, make_user):
    """Statistics stay for supervisors and admins (contract §7.1), whatever their office."""
    caseworker = make_user(
        dp, Role.CASEWORKER, username="dp.darien.stats", office=offices_dataset["offices"]["darien"]
    )
    query = parse_query({"from": ["2026-03-01"], "to": ["2026-03-31"], "by": ["to_office"]})
    with pytest.raises(Forbidden):
        referral_statistics(actor=actor_for_user(caseworker), query=query)


def test_labels_in_the_page_s_language():
    with translation.override("es"):
        assert dimension_label("to_office") == "Oficina receptora"
        assert dimension_label("province") == "Provincia"
        assert value_label("province", "PA-5") == "Darién"
        assert value_label("province", "unknown") == "Desconocido"
        assert value_label("to_office", "DP/DARIEN") == "DP/DARIEN"


def test_the_schema_describes_the_keys(db, stats_api, iom):
    response = stats_api(iom).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    schema = json.loads(response.content)
    keys = schema["components"]["schemas"]["StatisticsRowOutput"]["properties"]["key"]["properties"]
    assert "PA-5" in keys["province"]["enum"] and "unknown" in keys["province"]["enum"]
    assert keys["to_office"]["pattern"] == "^[A-Z0-9_]{2,16}(/[A-Z0-9_]{2,16})?$"
