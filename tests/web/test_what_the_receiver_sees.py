"""Issue 19, item 6: the web shows the receiver's projection from the read services, never its own.

The preview before sending ("exactly what the receiver will see"), the sender's "shared / stays with us"
marks and the referral page's free texts come from ``referrals.reads`` — the projection the API's receiver
view answers with — so a receiver that lost access, or whose consent leaves a category out, sees the same
nothing through every door.
"""

from __future__ import annotations

import re

import pytest

from referrals.choices import CATEGORY_FIELDS, SUBJECT_FIELDS
from tests.builders import referral_through_services

API = "/api/v1"
REASON = "Motivo confidencial"
REJECTION = "RECHAZO-CONFIDENCIAL"


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def travel_marks(page: str) -> dict[str, str]:
    """field → "yes"/"no" of the sender's page (the "shared / stays with us" marks)."""
    return dict(re.findall(r'data-field="([a-z_]+)" data-travels="(yes|no)"', page))


def section(page: str, start: str, end: str) -> str:
    return page.split(f'id="{start}"')[1].split(f'id="{end}"')[0]


# --- the preview before sending ------------------------------------------------------------------------


def test_the_preview_of_a_draft_without_given_consent_shares_nothing(
    iom_actor, dp, iom_caseworker, web_client
):
    """A draft the API accepted without consent: nothing would reach the receiver, so nothing is "shared"
    (the preview used to list the consented categories' data as shared whatever the consent said)."""
    draft = referral_through_services(
        sender=iom_actor, to=dp, categories=("identity", "contact"), consent_given=False
    )
    page = html(web_client(iom_caseworker).get(f"/referrals/{draft.pk}/preview/"))
    shared = section(page, "shared", "withheld")
    assert "data-field=" not in shared
    assert "María José" not in shared and REASON not in shared
    withheld = page.split('id="withheld"')[1]
    for name in SUBJECT_FIELDS:
        assert f'data-field="{name}"' in withheld, name


def test_the_preview_shares_exactly_the_receivers_projection(iom_actor, dp, iom_caseworker, web_client):
    draft = referral_through_services(sender=iom_actor, to=dp, categories=("contact",))
    page = html(web_client(iom_caseworker).get(f"/referrals/{draft.pk}/preview/"))
    shared = section(page, "shared", "withheld")
    assert set(re.findall(r'data-field="([a-z_]+)"', shared)) == set(CATEGORY_FIELDS["contact"])
    assert "maria@example.org" in shared and REASON in shared
    assert "María José" not in page and "V-12.345.678" not in page


# --- the sender's "what travels" marks ------------------------------------------------------------------


@pytest.fixture
def lost_access(iom_actor, dp_actor, dp):
    """``lost_access(how)`` → a referral IOM → DP (identity + contact) whose receiver lost access."""

    def make(how):
        if how == "rejected":
            path = [(iom_actor, "send"), (dp_actor, "reject", REJECTION)]
        else:  # consent withdrawn after the service was completed: the receiver's access is revoked
            path = [
                (iom_actor, "send"),
                (dp_actor, "accept"),
                (dp_actor, "start"),
                (dp_actor, "complete", "Hecho"),
            ]
        referral = referral_through_services(
            sender=iom_actor, to=dp, categories=("identity", "contact"), path=path
        )
        if how == "withdrawn":
            from referrals import services

            services.consent_withdraw(actor=iom_actor, referral_id=referral.pk, reason="Retiro")
        return referral

    return make


@pytest.mark.parametrize("how", ["rejected", "withdrawn"])
def test_nothing_is_marked_shared_once_the_receiver_lost_access(
    how, lost_access, iom_caseworker, web_client, receiver_api
):
    referral = lost_access(how)
    assert receiver_api.get(f"{API}/referrals/{referral.pk}/").json()["subject"] is None
    marks = travel_marks(html(web_client(iom_caseworker).get(f"/referrals/{referral.pk}/")))
    assert set(marks) == set(SUBJECT_FIELDS)  # the sender still sees the person, every field marked
    assert set(marks.values()) == {"no"}


def test_the_marks_are_the_receivers_projection_while_access_is_open(
    iom_actor, dp_actor, dp, iom_caseworker, web_client, receiver_api
):
    referral = referral_through_services(
        sender=iom_actor, to=dp, categories=("identity", "contact"), path=[(iom_actor, "send")]
    )
    received = receiver_api.get(f"{API}/referrals/{referral.pk}/").json()["subject"]
    marks = travel_marks(html(web_client(iom_caseworker).get(f"/referrals/{referral.pk}/")))
    assert {name for name, travels in marks.items() if travels == "yes"} == set(received)


# --- the referral page's free texts ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["rejected", "withdrawn"])
def test_a_receiver_that_lost_access_reads_no_free_text_through_either_door(
    how, lost_access, dp_caseworker, web_client, receiver_api
):
    referral = lost_access(how)
    api = receiver_api.get(f"{API}/referrals/{referral.pk}/").json()
    assert (api["reason"], api["status_reason"], api["outcome"]) == (None, None, None)
    page = html(web_client(dp_caseworker).get(f"/referrals/{referral.pk}/"))
    for text in (REASON, REJECTION, "Hecho"):
        assert text not in page
    assert 'id="reason"' not in page and 'id="status-reason"' not in page and 'id="outcome"' not in page


def test_a_receiver_with_access_reads_the_same_texts_and_fields_through_both_doors(
    iom_actor, dp_actor, dp, dp_caseworker, web_client, receiver_api
):
    referral = referral_through_services(
        sender=iom_actor,
        to=dp,
        categories=("documents",),
        path=[(iom_actor, "send"), (dp_actor, "accept"), (dp_actor, "start"), (dp_actor, "hold", "En pausa")],
    )
    api = receiver_api.get(f"{API}/referrals/{referral.pk}/").json()
    page = html(web_client(dp_caseworker).get(f"/referrals/{referral.pk}/"))
    person = section(page, "person", "timeline")
    assert set(re.findall(r'data-field="([a-z_]+)"', person)) == set(api["subject"])
    assert re.search(r'id="reason">\s*' + re.escape(api["reason"]), page)
    assert re.search(r'id="status-reason">\s*' + re.escape(api["status_reason"]), page)
    assert "María José" not in page
