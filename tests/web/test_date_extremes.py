"""Every page, the printable sheet and the API render the oldest and the newest dates the input rules
admit (contract §7.5: from 1900-01-01; a date of birth up to today, a consent time up to a few minutes
ahead). A consent dated year 1 once made the sheet answer 500 forever (OverflowError converting to
America/Panama): the rules now refuse it, and these are the extremes that remain."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.actor import actor_for_user
from referrals import cleaning, rules, services
from tests.factories import subject_data

pytestmark = pytest.mark.django_db


def _oldest():
    return cleaning.EARLIEST_DATE, cleaning.EARLIEST_DATETIME


def _newest():
    # The consent rule is the stricter of the two (a few minutes of clock skew, not a day).
    return rules.today_utc(), timezone.now() + rules.CONSENT_CLOCK_SKEW - datetime.timedelta(seconds=30)


@pytest.fixture(params=["oldest", "newest"])
def extreme(request, iom, dp, iom_caseworker, dp_caseworker):
    born, obtained = _oldest() if request.param == "oldest" else _newest()
    sender, receiver = actor_for_user(iom_caseworker), actor_for_user(dp_caseworker)
    case = services.case_create(
        actor=sender, subject=subject_data(date_of_birth=born, is_minor=request.param == "newest")
    )

    def refer():
        return services.referral_create(
            actor=sender,
            case=case,
            to_institution=dp,
            services=["legal_assistance"],
            urgency="urgent",
            reason="Motivo",
            consent={
                "given": True,
                "given_by": "self",
                "method": "verbal",
                "obtained_at": obtained,
                "data_categories": ["identity", "contact", "documents", "protection_needs"],
            },
        )

    referral, draft = refer(), refer()
    services.referral_transition(actor=sender, referral_id=referral.pk, action="send")
    services.referral_transition(actor=receiver, referral_id=referral.pk, action="accept")
    services.note_create(actor=receiver, referral_id=referral.pk, body="Nota")
    return referral, draft


def test_the_extremes_are_admitted_by_the_rules(extreme):
    referral, draft = extreme
    assert referral.consent.obtained_at is not None and draft.consent.obtained_at is not None


def test_every_page_and_the_sheet_render_the_extreme_dates(
    extreme, iom_caseworker, dp_caseworker, iom_supervisor, dp_supervisor, web_client
):
    referral, draft = extreme
    pages = {
        iom_caseworker: [
            "/",
            "/cases/",
            "/referrals/",
            f"/cases/{referral.case_id}/",
            f"/referrals/{referral.pk}/",
            f"/referrals/{draft.pk}/",
            f"/referrals/{draft.pk}/preview/",
            f"/referrals/{referral.pk}/print/",
            "/notifications/",
        ],
        dp_caseworker: ["/", "/referrals/", f"/referrals/{referral.pk}/", "/notifications/"],
        iom_supervisor: [
            "/supervision/workload/",
            "/supervision/response-times/",
            "/supervision/statistics/",
            "/audit/",
            "/audit/export.csv",
        ],
        dp_supervisor: ["/supervision/workload/", "/supervision/response-times/", "/audit/"],
    }
    for user, paths in pages.items():
        client = web_client(user)
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (user.username, path, response.status_code)
    sheet = web_client(iom_caseworker).get(f"/referrals/{referral.pk}/print/").content.decode()
    assert referral.reference in sheet


def test_the_api_renders_the_extreme_dates(extreme, iom, dp, api_as):
    referral, _draft = extreme
    for api in (api_as(iom), api_as(dp)):
        for path in (
            f"/api/v1/referrals/{referral.pk}/",
            "/api/v1/referrals/",
            f"/api/v1/referrals/{referral.pk}/events/",
            f"/api/v1/referrals/{referral.pk}/notes/",
        ):
            assert api.get(path).status_code == 200, path
    detail = api_as(dp).get(f"/api/v1/referrals/{referral.pk}/").json()
    assert detail["subject"]["date_of_birth"] == referral.case.subject.date_of_birth.isoformat()
    assert api_as(iom).get(f"/api/v1/cases/{referral.case_id}/").status_code == 200


def test_stored_junk_from_before_the_rules_still_prints(
    iom_actor, dp, iom_caseworker, web_client, make_referral
):
    """A consent stored as year 1 (accepted before the input rules; ``check_data`` lists it): the sheet
    prints, without the date no calendar of the reader's zone can hold, instead of answering 500."""
    from referrals.models import Consent

    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    year_one = datetime.datetime(1, 1, 1, 0, 0, tzinfo=datetime.UTC)
    Consent.objects.filter(referral=referral).update(obtained_at=year_one)  # as the old API stored it
    response = web_client(iom_caseworker).get(f"/referrals/{referral.pk}/print/")
    assert response.status_code == 200
    page = response.content.decode()
    assert referral.reference in page and "<dd>—</dd>" in page  # the date left out, the sheet printed
    assert web_client(iom_caseworker).get(f"/referrals/{referral.pk}/").status_code == 200
