"""One core for every door (contract §6.1): each input rule gives the same verdict through the partner API
and through the web form, and each response that shows personal data leaves its read event, whichever
door it came through."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.choices import Scope
from audit.models import AuditEvent
from referrals.models import Case, Subject
from tests.api.helpers import API
from tests.builders import referral_body

pytestmark = pytest.mark.django_db

ADULT_BORN = "1980-04-02"


def _subject(**overrides) -> dict:
    base = {
        "given_name": "Ana",
        "family_name": "Pérez",
        "date_of_birth": "1990-05-01",
        "sex": "female",
        "nationality": "VEN",
        "document_type": "passport",
        "document_number": "P123",
        "phone": "+507 6000-0000",
        "is_minor": False,
    }
    base.update(overrides)
    return base


def _web_form(subject: dict) -> dict:
    data = {k: ("on" if v is True else v) for k, v in subject.items() if v is not False and v is not None}
    data.setdefault("family_name", "")
    data["confirm_not_duplicate"] = "on"
    return data


#: (name, subject overrides, the field the error is reported on)
SUBJECT_RULES = [
    ("minor born in 1980", {"is_minor": True, "date_of_birth": ADULT_BORN}, "is_minor"),
    ("document number without a type", {"document_type": "none", "document_number": "X1"}, "document_number"),
    ("phone with markup", {"phone": "+507 6041<b>"}, "phone"),
    ("phone with letters", {"phone": "call me"}, "phone"),
    ("born in the future", {"date_of_birth": "2999-01-01"}, "date_of_birth"),
]


@pytest.mark.parametrize(("name", "overrides", "field"), SUBJECT_RULES, ids=[r[0] for r in SUBJECT_RULES])
def test_a_subject_rule_gives_the_same_verdict_through_both_doors(
    name, overrides, field, iom, api_as, iom_caseworker, web_sign_in
):
    api = api_as(iom)
    response = api.post(f"{API}/cases/", {"subject": _subject(**overrides)}, format="json")
    assert response.status_code == 400, name
    assert f"subject.{field}" in response.json()["errors"]

    client = web_sign_in(iom_caseworker)
    page = client.post("/cases/new/", _web_form(_subject(**overrides)))
    assert page.status_code == 200  # the form again, with its error
    assert field in page.context["form"].errors
    assert Case.objects.count() == 0


def test_coherent_subjects_pass_both_doors_alike(iom, api_as, iom_caseworker, web_sign_in):
    """Under 18 without ``is_minor`` is accepted (ages are often uncertain)."""
    young = (timezone.now().date() - datetime.timedelta(days=365 * 10)).isoformat()
    api = api_as(iom)
    assert (
        api.post(f"{API}/cases/", {"subject": _subject(date_of_birth=young)}, format="json").status_code
        == 201
    )
    client = web_sign_in(iom_caseworker)
    page = client.post("/cases/new/", _web_form(_subject(date_of_birth=young, given_name="Berta")))
    assert page.status_code == 302
    assert Case.objects.count() == 2


def test_a_minor_turns_adult_on_the_18th_birthday(iom, api_as):
    today = timezone.now().date()
    eighteen_today = (
        today.replace(year=today.year - 18) if not (today.month == 2 and today.day == 29) else None
    )
    if eighteen_today is None:
        eighteen_today = datetime.date(today.year - 18, 3, 1)
    api = api_as(iom)
    body = {"subject": _subject(is_minor=True, date_of_birth=eighteen_today.isoformat())}
    assert api.post(f"{API}/cases/", body, format="json").status_code == 400
    day_after = (eighteen_today + datetime.timedelta(days=1)).isoformat()
    body = {"subject": _subject(is_minor=True, date_of_birth=day_after)}
    assert api.post(f"{API}/cases/", body, format="json").status_code == 201


def test_a_case_update_is_checked_on_the_merged_subject(iom, api_as, iom_actor, make_case):
    """Setting only ``is_minor`` on an adult's case is refused: the rule sees the stored date of birth."""
    from referrals import services
    from referrals.errors import InvalidInput

    case = make_case(iom_actor, date_of_birth=datetime.date(1980, 1, 1))
    with pytest.raises(InvalidInput) as refused:
        services.case_update(actor=iom_actor, case=case, subject={"is_minor": True})
    assert "subject.is_minor" in refused.value.errors


STRICT_BODIES = [
    ("a number for a name", lambda b: b["subject"].update(given_name=123), "subject.given_name"),
    ("a string for a boolean", lambda b: b["subject"].update(is_minor="yes"), "subject.is_minor"),
    ("a string 'false' for a boolean", lambda b: b["subject"].update(is_minor="false"), "subject.is_minor"),
    ("a number for a date", lambda b: b["subject"].update(date_of_birth=19900501), "subject.date_of_birth"),
    ("a number for a choice", lambda b: b["subject"].update(sex=1), "subject.sex"),
]


@pytest.mark.parametrize(("name", "mutate", "field"), STRICT_BODIES, ids=[r[0] for r in STRICT_BODIES])
def test_strict_case_input(name, mutate, field, iom, api_as):
    body = {"subject": _subject(), "summary": "x"}
    mutate(body)
    response = api_as(iom).post(f"{API}/cases/", body, format="json")
    assert response.status_code == 400, name
    assert field in response.json()["errors"]
    assert Case.objects.count() == 0


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_anywhere_are_refused(number, iom, api_as):
    raw = '{"subject": {"given_name": "Ana", "x": NUMBER}, "summary": "s"}'.replace("NUMBER", number)
    response = api_as(iom).post(f"{API}/cases/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("name", "consent", "field"),
    [
        ("a date for obtained_at", {"obtained_at": "2026-11-27"}, "consent.obtained_at"),
        ("'false' for given", {"given": "false"}, "consent.given"),
        ("1 for given", {"given": 1}, "consent.given"),
    ],
)
def test_strict_consent_input(name, consent, field, iom, api_as, iom_actor, make_case):
    case = make_case(iom_actor)
    response = api_as(iom).post(f"{API}/referrals/", referral_body(case.pk, **consent), format="json")
    assert response.status_code == 400, name
    assert field in response.json()["errors"]


def test_a_number_for_the_case_id_is_refused(iom, api_as):
    body = referral_body(1)
    body["case"] = 1
    assert api_as(iom).post(f"{API}/referrals/", body, format="json").status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a b",
        "https://example.org/\x00",
        "https://exa mple.org/",
        "https:///nohost",
        "ftp://x.org/",
    ],
)
def test_webhook_urls_give_the_same_verdict_through_both_doors(url, iom, api_as, iom_admin, web_sign_in):
    from notifications.models import WebhookEndpoint

    response = api_as(iom).post(
        f"{API}/webhooks/", {"url": url, "events": ["referral.requested"]}, format="json"
    )
    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    page = web_sign_in(iom_admin).post(
        "/manage/webhooks/new/", {"url": url, "events": ["referral.requested"]}
    )
    assert page.status_code == 200
    assert WebhookEndpoint.objects.count() == 0


def test_document_numbers_are_normalized_alike_whatever_the_punctuation(iom, api_as):
    api = api_as(iom)
    created = api.post(
        f"{API}/cases/",
        {"subject": _subject(document_type="national_id", document_number="v-12.345.678")},
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["subject"]["document_number"] == "V12345678"
    for query in ("V12345678", "v 12/345/678", "V-12.345.678"):
        found = api.get(f"{API}/cases/", {"document_number": query}).json()["results"]
        assert [c["id"] for c in found] == [created.json()["id"]], query


# --- personal data in write responses (contract §6.1) ----------------------------------------------


def _events(action: str):
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def test_a_write_only_client_gets_metadata_back_and_no_read_is_recorded(iom, dp, api_as):
    api = api_as(iom, [Scope.REFERRALS_WRITE])
    created = api.post(f"{API}/cases/", {"subject": _subject(), "summary": "Resumen"}, format="json")
    assert created.status_code == 201
    assert created.json()["subject"] is None and created.json()["summary"] is None
    assert _events("case.viewed") == []
    referral = api.post(f"{API}/referrals/", referral_body(created.json()["id"]), format="json")
    assert referral.status_code == 201, referral.json()["errors"]
    assert referral.json()["subject"] is None and referral.json()["reason"] is None
    sent = api.post(f"{API}/referrals/{referral.json()['id']}/send/", {}, format="json")
    assert sent.status_code == 200 and sent.json()["subject"] is None
    assert _events("referral.viewed") == []


def test_a_write_only_receiver_accepting_sees_no_identity(iom, dp, api_as, make_referral, iom_actor):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    dp_write_only = api_as(dp, [Scope.REFERRALS_WRITE])
    accepted = dp_write_only.post(f"{API}/referrals/{referral.pk}/accept/", {}, format="json")
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["subject"] is None
    assert _events("referral.viewed") == []


def test_a_reader_writer_gets_the_projection_and_the_read_is_recorded_with_the_request_id(
    iom, dp, api_as, make_referral, iom_actor
):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    dp_api = api_as(dp, [Scope.REFERRALS_WRITE, Scope.REFERRALS_READ])
    accepted = dp_api.post(
        f"{API}/referrals/{referral.pk}/accept/", {}, format="json", HTTP_X_REQUEST_ID="req-accept.1"
    )
    assert accepted.status_code == 200
    assert set(accepted.json()["subject"]) == {
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "nationality",
        "languages",
        "is_minor",
    }
    viewed = _events("referral.viewed")
    assert len(viewed) == 1
    assert viewed[0].object_id == str(referral.pk)
    assert viewed[0].request_id == "req-accept.1"
    assert accepted["X-Request-ID"] == "req-accept.1"


def test_idempotent_replays_are_reads_too(iom, api_as):
    reader = api_as(iom)
    body = {"subject": _subject(), "summary": "Resumen"}
    first = reader.post(f"{API}/cases/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = reader.post(f"{API}/cases/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    viewed = _events("case.viewed")
    assert len(viewed) == 2
    assert viewed[1].detail == {"idempotent_replay": True}

    writer = api_as(iom, [Scope.REFERRALS_WRITE])
    first = writer.post(f"{API}/cases/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    again = writer.post(f"{API}/cases/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert again.json()["id"] == first.json()["id"] and again.json()["subject"] is None
    assert len(_events("case.viewed")) == 2


def test_the_web_referral_page_records_the_same_read_as_the_api(
    iom, dp, make_referral, iom_actor, dp_caseworker, web_sign_in, api_as
):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    web_sign_in(dp_caseworker).get(f"/referrals/{referral.pk}/")
    api_as(dp).get(f"{API}/referrals/{referral.pk}/")
    web_event, api_event = _events("referral.viewed")
    assert web_event.object_id == api_event.object_id == str(referral.pk)
    assert web_event.detail["side"] == api_event.detail["side"] == "receiver"


# --- If-Match, headers ------------------------------------------------------------------------------


def test_an_if_match_list_is_read_alike_by_actions_notes_and_withdrawal(
    iom, dp, api_as, make_referral, iom_actor
):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    sender, receiver = api_as(iom), api_as(dp)
    etag = sender.get(f"{API}/referrals/{referral.pk}/")["ETag"]
    note = sender.post(
        f"{API}/referrals/{referral.pk}/notes/",
        {"body": "hola"},
        format="json",
        HTTP_IF_MATCH=f'"999", {etag}',
    )
    assert note.status_code == 201
    etag = sender.get(f"{API}/referrals/{referral.pk}/")["ETag"]
    accepted = receiver.post(
        f"{API}/referrals/{referral.pk}/accept/", {}, format="json", HTTP_IF_MATCH=f'"999", {etag}'
    )
    assert accepted.status_code == 200
    stale = sender.post(
        f"{API}/referrals/{referral.pk}/consent/withdraw/",
        {"reason": "r"},
        format="json",
        HTTP_IF_MATCH='"1", W/' + etag,
    )
    assert stale.status_code == 412
    etag = accepted["ETag"]
    withdrawn = sender.post(
        f"{API}/referrals/{referral.pk}/consent/withdraw/",
        {"reason": "r"},
        format="json",
        HTTP_IF_MATCH=f'"0", {etag}',
    )
    assert withdrawn.status_code == 200


def test_every_api_response_is_not_stored_and_a_401_names_bearer(iom, api_as, client):
    api = api_as(iom)
    for path in (f"{API}/institutions/", f"{API}/cases/", f"{API}/referrals/", f"{API}/nothing-here/"):
        assert api.get(path)["Cache-Control"] == "no-store", path
    anonymous = client.get(f"{API}/referrals/")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert anonymous["Cache-Control"] == "no-store"


def test_drf_messages_are_english_whatever_the_accept_language(iom, api_as, client):
    response = client.get(f"{API}/referrals/", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 401
    assert "credentials" in response.json()["detail"].lower()
    wrong_method = api_as(iom).delete(f"{API}/institutions/", HTTP_ACCEPT_LANGUAGE="es")
    assert wrong_method.status_code == 405
    assert "not allowed" in wrong_method.json()["detail"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123.X_y", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("bad id", False),
        ("é", False),
        ("a\tb", False),
    ],
)
def test_request_ids(sent, kept, iom, api_as):
    response = api_as(iom).get(f"{API}/institutions/", HTTP_X_REQUEST_ID=sent)
    assert (response["X-Request-ID"] == sent) is kept


def test_no_subject_row_holds_a_document_number_in_clear(iom, api_as):
    api_as(iom).post(f"{API}/cases/", {"subject": _subject(document_number="ZZ-99.88/77")}, format="json")
    raw = Subject.objects.values_list("document_number_index", flat=True).get()
    assert raw and "ZZ998877" not in str(raw)


def test_a_denial_inside_a_rolled_back_transaction_is_still_recorded(
    iom, dp, third, api_as, make_case, iom_actor
):
    """An idempotent create runs in one transaction; a foreign case id makes it fail and roll back, and the
    refused access to that case is kept all the same."""
    foreign = make_case(iom_actor)
    response = api_as(dp).post(
        f"{API}/referrals/", referral_body(foreign.pk), format="json", HTTP_IDEMPOTENCY_KEY="deny-1"
    )
    assert response.status_code == 400
    denied = _events("access.denied")
    assert [e.object_id for e in denied] == [str(foreign.pk)]
    assert denied[0].actor_institution == "DP"


def test_a_denial_in_a_service_transaction_survives_its_rollback(
    iom, dp, third, make_referral, iom_actor, service_actor
):
    from django.db import transaction

    from audit.deferred import flush
    from referrals import services
    from referrals.errors import NotVisible

    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    outsider = service_actor(third)
    flush()
    with pytest.raises(NotVisible), transaction.atomic():
        services.referral_transition(actor=outsider, referral_id=referral.pk, action="accept")
    assert _events("access.denied") == []  # rolled back with the transaction…
    assert flush() == 1  # …and recorded once it is over
    assert [e.object_id for e in _events("access.denied")] == [str(referral.pk)]


@pytest.mark.parametrize(
    ("action", "web_path", "api_path"),
    [
        ("case.viewed", "/cases/{case}/", "/cases/{case}/"),
        ("referral.viewed", "/referrals/{referral}/", "/referrals/{referral}/"),
        ("note.viewed", "/referrals/{referral}/", "/referrals/{referral}/notes/"),
    ],
)
def test_each_read_of_personal_data_leaves_the_same_event_through_each_door(
    action, web_path, api_path, iom, dp, iom_caseworker, iom_actor, make_referral, api_as, web_sign_in
):
    from referrals import services

    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    services.note_create(actor=iom_actor, referral_id=referral.pk, body="Nota")
    ids = {"case": referral.case_id, "referral": referral.pk}
    assert web_sign_in(iom_caseworker).get(web_path.format(**ids)).status_code == 200
    assert api_as(iom).get(API + api_path.format(**ids)).status_code == 200
    web_event, api_event = _events(action)
    assert web_event.object_id == api_event.object_id
    assert web_event.actor_institution == api_event.actor_institution == "IOM"


def test_a_consent_obtained_in_the_future_is_refused_by_both_doors(
    iom, dp, api_as, iom_actor, iom_caseworker, make_case, web_sign_in
):
    from referrals.models import Referral

    case = make_case(iom_actor)
    later = (timezone.now() + datetime.timedelta(days=2)).replace(microsecond=0)
    response = api_as(iom).post(
        f"{API}/referrals/",
        referral_body(case.pk, obtained_at=later.isoformat().replace("+00:00", "Z")),
        format="json",
    )
    assert response.status_code == 400
    assert "consent.obtained_at" in response.json()["errors"]
    page = web_sign_in(iom_caseworker).post(
        f"/cases/{case.pk}/refer/",
        {
            "to_institution": "DP",
            "services": ["legal_assistance"],
            "urgency": "normal",
            "reason": "Motivo",
            "consent_given": "on",
            "consent_given_by": "self",
            "consent_method": "verbal",
            "consent_obtained_at": timezone.localtime(later).strftime("%Y-%m-%dT%H:%M"),
            "data_categories": ["identity"],
        },
    )
    assert page.status_code == 200
    assert "consent_obtained_at" in page.context["form"].errors
    assert Referral.objects.count() == 0


def test_the_web_says_the_rules_in_spanish(iom, iom_caseworker, web_sign_in):
    page = web_sign_in(iom_caseworker).post(
        "/cases/new/", _web_form(_subject(is_minor=True, date_of_birth=ADULT_BORN)), HTTP_ACCEPT_LANGUAGE="es"
    )
    assert "no puede marcarse como menor de edad" in page.content.decode()
