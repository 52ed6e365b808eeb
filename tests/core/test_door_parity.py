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
from tests.web.conftest import logged_in_client

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
        _web_referral_form(consent_obtained_at=timezone.localtime(later).strftime("%Y-%m-%dT%H:%M")),
    )
    assert page.status_code == 200
    assert "consent_obtained_at" in page.context["form"].errors
    assert Referral.objects.count() == 0


def test_the_web_says_the_rules_in_spanish(iom, iom_caseworker, web_sign_in):
    page = web_sign_in(iom_caseworker).post(
        "/cases/new/", _web_form(_subject(is_minor=True, date_of_birth=ADULT_BORN)), HTTP_ACCEPT_LANGUAGE="es"
    )
    assert "no puede marcarse como menor de edad" in page.content.decode()


# --- every decision of referrals.policy answers alike through each door (contract §7.1) ---------------
#
# The same person through the partner API (a session, as the API accepts staff sessions) and through the
# web, and the policy's own answer: the same verdict for an allowed and for a refused actor. Decisions
# that exist in the web only (take, assign, print) compare what the page offers with what its POST or
# GET does. The Django admin shows cases and referrals read-only (no decision there); no management
# command takes one of these decisions.


def _api_verdict(response) -> bool:
    if response.status_code in (200, 201):
        return True
    assert response.status_code in (403, 409), (response.status_code, response.content[:300])
    return False


def _web_page_verdict(response) -> bool:
    if response.status_code in (200, 302):
        return True
    assert response.status_code == 403, response.status_code
    return False


STATISTICS = {"from": "2026-03-01", "to": "2026-03-31", "by": "month"}


@pytest.mark.parametrize(("who", "allowed"), [("supervisor", True), ("admin", True), ("caseworker", False)])
def test_statistics_parity(
    who, allowed, iom, iom_supervisor, iom_admin, iom_caseworker, user_api, web_client
):
    from accounts.actor import actor_for_user
    from referrals import policy

    user = {"supervisor": iom_supervisor, "admin": iom_admin, "caseworker": iom_caseworker}[who]
    assert policy.may_view_statistics(actor_for_user(user)) is allowed
    assert _api_verdict(user_api(user).get(f"{API}/statistics/referrals/", STATISTICS)) is allowed
    assert _web_page_verdict(web_client(user).get("/supervision/statistics/", STATISTICS)) is allowed
    assert web_client(user).get("/").status_code in (200, 302)
    nav = web_client(user).get("/notifications/").context["nav"]
    assert nav["can_view_statistics"] is allowed


@pytest.mark.parametrize(("who", "allowed"), [("caseworker", True), ("admin", False)])
def test_refer_parity(who, allowed, iom, iom_admin, iom_caseworker, user_api, web_client):
    from accounts.actor import actor_for_user
    from referrals import policy

    user = {"admin": iom_admin, "caseworker": iom_caseworker}[who]
    assert policy.may_refer(actor_for_user(user)) is allowed
    assert (
        _api_verdict(user_api(user).post(f"{API}/cases/", {"subject": _subject()}, format="json")) is allowed
    )
    page = web_client(user).post("/cases/new/", _web_form(_subject(given_name="Berta")))
    assert _web_page_verdict(page) is allowed
    assert Case.objects.count() == (2 if allowed else 0)
    assert web_client(user).get("/notifications/").context["nav"]["can_refer"] is allowed


def _lifecycle_verdicts(make, actor_of, user, action, body=None) -> dict:
    """The verdict of ``action`` by ``user`` on a fresh referral per door: the policy, the API, the web
    (a button offered, and the POST's effect)."""
    from accounts.actor import actor_for_user
    from referrals import policy
    from referrals.models import Referral

    verdicts = {}
    referral = make()
    verdicts["policy"] = policy.may_transition(actor_for_user(user), referral, action)
    verdicts["api"] = _api_verdict(
        actor_of(user).post(f"{API}/referrals/{referral.pk}/{action}/", body or {}, format="json")
    )
    referral = make()
    client = logged_in_client(user)
    page = client.get(f"/referrals/{referral.pk}/")
    verdicts["web button"] = action in {b["action"] for b in page.context["buttons"]}
    before = Referral.objects.get(pk=referral.pk).status
    client.post(f"/referrals/{referral.pk}/actions/{action}/", body or {})
    verdicts["web"] = Referral.objects.get(pk=referral.pk).status != before
    return verdicts


@pytest.mark.parametrize(
    ("case", "allowed"),
    [
        ("the receiver accepts", True),
        ("the sender accepts", False),
        ("a supervisor voids", True),
        ("a caseworker voids", False),
    ],
)
def test_lifecycle_parity(
    case, allowed, iom, dp, iom_actor, iom_caseworker, iom_supervisor, dp_caseworker, user_api
):
    from tests.builders import referral_through_services

    def sent():
        return referral_through_services(sender=iom_actor, to=dp, path=[(iom_actor, "send")])

    user, action = {
        "the receiver accepts": (dp_caseworker, "accept"),
        "the sender accepts": (iom_caseworker, "accept"),
        "a supervisor voids": (iom_supervisor, "void"),
        "a caseworker voids": (iom_caseworker, "void"),
    }[case]
    body = {"reason": "Error"} if action == "void" else None
    verdicts = _lifecycle_verdicts(sent, user_api, user, action, body)
    assert verdicts == dict.fromkeys(verdicts, allowed), verdicts


@pytest.mark.parametrize(("consent_given", "allowed"), [(True, True), (False, False)])
def test_send_parity(consent_given, allowed, iom, dp, iom_actor, iom_caseworker, user_api):
    """Send needs given consent (the lifecycle's guard): 409 ``consent-required`` at every door."""
    from accounts.actor import actor_for_user
    from referrals import policy
    from referrals.models import Referral
    from tests.builders import referral_through_services

    def draft():
        return referral_through_services(sender=iom_actor, to=dp, consent_given=consent_given)

    referral = draft()
    assert policy.may_send(actor_for_user(iom_caseworker), referral) is allowed
    response = user_api(iom_caseworker).post(f"{API}/referrals/{referral.pk}/send/", {}, format="json")
    assert _api_verdict(response) is allowed
    if not allowed:
        assert response.json()["type"].endswith("consent-required")
    referral = draft()
    logged_in_client(iom_caseworker).post(f"/referrals/{referral.pk}/actions/send/")
    assert (Referral.objects.get(pk=referral.pk).status == "requested") is allowed


@pytest.mark.parametrize(("voided", "allowed"), [(False, True), (True, False)])
def test_note_parity(
    voided, allowed, iom, dp, iom_actor, iom_caseworker, iom_supervisor, user_api, web_client
):
    from accounts.actor import actor_for_user
    from referrals import policy
    from referrals.models import Note
    from tests.builders import referral_through_services

    path = [(iom_actor, "send")]
    if voided:
        path.append((actor_for_user(iom_supervisor), "void", "Error"))
    referral = referral_through_services(sender=iom_actor, to=dp, path=path)
    assert policy.may_note(actor_for_user(iom_caseworker), referral) is allowed
    notes = f"{API}/referrals/{referral.pk}/notes/"
    assert _api_verdict(user_api(iom_caseworker).post(notes, {"body": "Nota"}, format="json")) is allowed
    client = web_client(iom_caseworker)
    assert (client.get(f"/referrals/{referral.pk}/").context["note_form"] is not None) is allowed
    client.post(f"/referrals/{referral.pk}/notes/", {"body": "Nota web"})
    assert Note.objects.filter(referral=referral).count() == (2 if allowed else 0)


@pytest.mark.parametrize(("side", "allowed"), [("sender", True), ("receiver", False)])
def test_consent_withdrawal_parity(
    side, allowed, iom, dp, iom_actor, iom_caseworker, dp_caseworker, user_api, web_client
):
    from accounts.actor import actor_for_user
    from referrals import policy
    from referrals.models import Referral
    from tests.builders import referral_through_services

    user = iom_caseworker if side == "sender" else dp_caseworker

    def sent():
        return referral_through_services(sender=iom_actor, to=dp, path=[(iom_actor, "send")])

    referral = sent()
    assert policy.may_withdraw_consent(actor_for_user(user), referral) is allowed
    url = f"{API}/referrals/{referral.pk}/consent/withdraw/"
    assert _api_verdict(user_api(user).post(url, {"reason": "La persona lo pidió"}, format="json")) is allowed
    referral = sent()
    client = web_client(user)
    assert (client.get(f"/referrals/{referral.pk}/").context["withdraw_form"] is not None) is allowed
    client.post(f"/referrals/{referral.pk}/consent/withdraw/", {"reason": "La persona lo pidió"})
    withdrawn = Referral.objects.get(pk=referral.pk).consent.withdrawn_at is not None
    assert withdrawn is allowed


@pytest.mark.parametrize(("who", "allowed"), [("caseworker", True), ("supervisor", False)])
def test_take_parity(who, allowed, iom, dp, iom_actor, dp_caseworker, dp_supervisor, web_client):
    from accounts.actor import actor_for_user
    from referrals import policy
    from referrals.models import Referral
    from tests.builders import referral_through_services

    user = dp_caseworker if who == "caseworker" else dp_supervisor
    referral = referral_through_services(sender=iom_actor, to=dp, path=[(iom_actor, "send")])
    assert policy.may_take(actor_for_user(user), referral) is allowed
    client = web_client(user)
    assert client.get(f"/referrals/{referral.pk}/").context["can_take"] is allowed
    response = client.post(f"/referrals/{referral.pk}/take/")
    assert response.status_code in (302, 403)
    assert (Referral.objects.get(pk=referral.pk).assignee_id == user.pk) is allowed


@pytest.mark.parametrize(("who", "allowed"), [("supervisor", True), ("caseworker", False)])
def test_assign_parity(who, allowed, iom, dp, iom_actor, dp_caseworker, dp_supervisor, make_user, web_client):
    from accounts.actor import actor_for_user
    from accounts.choices import Role
    from referrals import policy
    from referrals.models import Referral
    from tests.builders import referral_through_services

    other = make_user(dp, Role.CASEWORKER, username="dp.other")
    user = dp_supervisor if who == "supervisor" else dp_caseworker
    referral = referral_through_services(sender=iom_actor, to=dp, path=[(iom_actor, "send")])
    assert policy.may_assign(actor_for_user(user), referral) is allowed
    client = web_client(user)
    assert client.get(f"/referrals/{referral.pk}/").context["can_assign"] is allowed
    client.post(f"/referrals/{referral.pk}/assign/", {"assignee": str(other.pk)})
    assert (Referral.objects.get(pk=referral.pk).assignee_id == other.pk) is allowed


@pytest.mark.parametrize(
    ("case", "allowed"), [("sender", True), ("sender, voided", False), ("receiver", False)]
)
def test_print_parity(
    case, allowed, iom, dp, iom_actor, iom_caseworker, iom_supervisor, dp_caseworker, web_client
):
    from accounts.actor import actor_for_user
    from referrals import policy
    from tests.builders import referral_through_services

    path = [(iom_actor, "send")]
    if case == "sender, voided":
        path.append((actor_for_user(iom_supervisor), "void", "Error"))
    referral = referral_through_services(sender=iom_actor, to=dp, path=path)
    user = dp_caseworker if case == "receiver" else iom_caseworker
    assert policy.may_print(actor_for_user(user), referral) is allowed
    client = web_client(user)
    assert client.get(f"/referrals/{referral.pk}/").context["can_print"] is allowed
    sheet = client.get(f"/referrals/{referral.pk}/print/")
    assert (sheet.status_code == 200) is allowed
    assert AuditEvent.objects.filter(action="referral.printed").exists() is allowed


@pytest.mark.parametrize(("who", "allowed"), [("supervisor", True), ("admin", True), ("caseworker", False)])
def test_audit_parity(who, allowed, iom, iom_supervisor, iom_admin, iom_caseworker, user_api, web_client):
    from accounts.actor import actor_for_user
    from referrals import policy

    user = {"supervisor": iom_supervisor, "admin": iom_admin, "caseworker": iom_caseworker}[who]
    assert policy.may_audit(actor_for_user(user)) is allowed
    assert _api_verdict(user_api(user).get(f"{API}/audit/events/")) is allowed
    assert _web_page_verdict(web_client(user).get("/audit/")) is allowed
    assert web_client(user).get("/notifications/").context["nav"]["can_audit"] is allowed


# --- clean data at every door (contract §7.5) ------------------------------------------------------
# One rule (referrals.cleaning, applied by referrals.rules and the services): the same verdict through
# the partner API and the web forms.

#: (name, subject overrides, the field the error is reported on)
CLEAN_SUBJECT_RULES = [
    ("an ANSI escape in a name", {"given_name": "a\u0001\u001b[31mb"}, "given_name"),
    ("a right-to-left override in a name", {"family_name": "\u202eevil\u202c"}, "family_name"),
    ("a C1 control in the location", {"current_location": "km\u00857"}, "current_location"),
    ("an isolate in the protection needs", {"protection_needs": "a\u2066b\u2069"}, "protection_needs"),
    ("a nationality that does not exist", {"nationality": "XXX"}, "nationality"),
    ("a language that does not exist", {"languages": ["xx"]}, "languages"),
    ("born before 1900", {"date_of_birth": "1899-12-31"}, "date_of_birth"),
]


@pytest.mark.parametrize(
    ("name", "overrides", "field"), CLEAN_SUBJECT_RULES, ids=[r[0] for r in CLEAN_SUBJECT_RULES]
)
def test_a_clean_data_rule_gives_the_same_verdict_through_both_doors(
    name, overrides, field, iom, api_as, iom_caseworker, web_sign_in
):
    response = api_as(iom).post(f"{API}/cases/", {"subject": _subject(**overrides)}, format="json")
    assert response.status_code == 400, name
    assert f"subject.{field}" in response.json()["errors"]

    page = web_sign_in(iom_caseworker).post("/cases/new/", _web_form(_subject(**overrides)))
    assert page.status_code == 200  # the form again, with its error
    assert field in page.context["form"].errors
    assert Case.objects.count() == 0


def test_codes_that_exist_pass_both_doors_even_when_the_picker_does_not_list_them(
    iom, api_as, iom_caseworker, web_sign_in
):
    """``spa`` (ISO 639-3 for Spanish) and ``ATA`` exist: the pickers list ``es`` and not Antarctica's
    people, but the rule is the domain's, not the picker's."""
    subject = _subject(nationality="ATA", languages=["spa", "es-PA"])
    assert api_as(iom).post(f"{API}/cases/", {"subject": subject}, format="json").status_code == 201
    page = web_sign_in(iom_caseworker).post("/cases/new/", _web_form(subject | {"given_name": "Berta"}))
    assert page.status_code == 302, page.context["form"].errors
    assert Case.objects.count() == 2


def _web_referral_form(**changes) -> dict:
    form = {
        "to_institution": "DP",
        "services": ["legal_assistance"],
        "urgency": "normal",
        "reason": "Motivo",
        "consent_given": "on",
        "consent_given_by": "self",
        "consent_method": "verbal",
        "consent_obtained_at": "2026-11-27T10:00",
        "data_categories": ["identity"],
    }
    form.update(changes)
    return form


@pytest.mark.parametrize(
    ("name", "api_change", "web_change", "api_field", "web_field"),
    [
        ("a control in the reason", {"reason": "a\u001bb"}, {"reason": "a\u001bb"}, "reason", "reason"),
        ("a bidi in the reason", {"reason": "\u202eevil"}, {"reason": "\u202eevil"}, "reason", "reason"),
        (
            "consent obtained before 1900",
            {"obtained_at": "1899-12-31T12:00:00Z"},
            {"consent_obtained_at": "1899-12-31T12:00"},
            "consent.obtained_at",
            "consent_obtained_at",
        ),
    ],
)
def test_a_referral_clean_data_rule_gives_the_same_verdict_through_both_doors(
    name,
    api_change,
    web_change,
    api_field,
    web_field,
    iom,
    dp,
    api_as,
    iom_actor,
    iom_caseworker,
    make_case,
    web_sign_in,
):
    from referrals.models import Referral

    case = make_case(iom_actor)
    body = referral_body(case.pk)
    if "reason" in api_change:
        body.update(api_change)
    else:
        body["consent"].update(api_change)
    response = api_as(iom).post(f"{API}/referrals/", body, format="json")
    assert response.status_code == 400, name
    assert api_field in response.json()["errors"]
    page = web_sign_in(iom_caseworker).post(f"/cases/{case.pk}/refer/", _web_referral_form(**web_change))
    assert page.status_code == 200
    assert web_field in page.context["form"].errors
    assert Referral.objects.count() == 0


@pytest.mark.parametrize("text", ["a\u001b[31mb", "\u202eevil\u202c", "a\rb"])
def test_a_note_with_control_or_bidi_characters_is_refused_by_both_doors(
    text, iom, dp, api_as, iom_actor, iom_caseworker, make_referral, web_sign_in
):
    from referrals.models import Note

    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    response = api_as(iom).post(f"{API}/referrals/{referral.pk}/notes/", {"body": text}, format="json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    page = web_sign_in(iom_caseworker).post(f"/referrals/{referral.pk}/notes/", {"body": text}, follow=True)
    assert "carácter de control" in page.content.decode() or "formato bidireccional" in page.content.decode()
    assert Note.objects.count() == 0


def test_a_browser_line_break_is_a_newline_through_both_doors(
    iom, dp, api_as, iom_actor, iom_caseworker, make_referral, web_sign_in
):
    from referrals.models import Note

    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    api_as(iom).post(f"{API}/referrals/{referral.pk}/notes/", {"body": "uno\r\ndos"}, format="json")
    web_sign_in(iom_caseworker).post(f"/referrals/{referral.pk}/notes/", {"body": "tres\r\ncuatro"})
    assert sorted(n.body for n in Note.objects.all()) == ["tres\ncuatro", "uno\ndos"]


def test_the_services_apply_the_rules_whatever_the_door(iom_actor, make_case, dp, make_referral):
    """A management command or a later door calls the services: the same rules, the same field names."""
    import datetime as dt

    from referrals import services
    from referrals.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        services.case_create(actor=iom_actor, subject=_subject(nationality="XXX", given_name="a\u202eb"))
    assert set(refused.value.errors) == {"subject.nationality", "subject.given_name"}
    case = make_case(iom_actor)
    with pytest.raises(InvalidInput) as refused:
        services.case_update(actor=iom_actor, case=case, summary="a\u009bb")
    assert set(refused.value.errors) == {"summary"}
    naive = {"given": True, "given_by": "self", "method": "verbal", "data_categories": ["identity"]}
    with pytest.raises(InvalidInput) as refused:
        services.referral_create(
            actor=iom_actor,
            case=case,
            to_institution=dp,
            services=["legal_assistance"],
            urgency="normal",
            reason="Motivo",
            consent=naive | {"obtained_at": dt.datetime(2026, 11, 27, 10, 0)},  # noqa: DTZ001 — the point
        )
    assert set(refused.value.errors) == {"consent.obtained_at"}
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    with pytest.raises(InvalidInput) as refused:
        services.referral_transition(actor=iom_actor, referral_id=referral.pk, action="cancel", reason="\x1b")
    assert set(refused.value.errors) == {"reason"}


def test_staff_of_another_office_get_404_at_every_door_and_each_denial_is_recorded(
    iom, dp, api_as, iom_actor, make_user
):
    """Need to know inside an institution (contract §7.2): a referral held by the Darién office is not
    found by a caseworker of the Chiriquí office — through the web and through the API alike — and each
    door's refusal is an ``access.denied`` event; the Darién caseworker sees it through both."""
    from rest_framework.test import APIClient

    from accounts.actor import system_actor
    from accounts.choices import Role
    from accounts.services import office_save

    offices = {}
    for code, province in (("DARIEN", "PA-5"), ("CHIRIQUI", "PA-4")):
        offices[code], _created = office_save(
            institution=dp,
            code=code,
            name=code.title(),
            province=province,
            services=["legal_assistance"],
            actor=system_actor(dp, "test"),
        )
    darien_cw = make_user(dp, Role.CASEWORKER, username="dp.darien", office=offices["DARIEN"])
    chiriqui_cw = make_user(dp, Role.CASEWORKER, username="dp.chiriqui", office=offices["CHIRIQUI"])
    case = api_as(iom).post(f"{API}/cases/", {"subject": _subject()}, format="json").json()
    body = {**referral_body(case["id"]), "to_office": "DARIEN"}
    referral = api_as(iom).post(f"{API}/referrals/", body, format="json").json()
    assert api_as(iom).post(f"{API}/referrals/{referral['id']}/send/").status_code == 200

    def api_for(user):
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    assert logged_in_client(chiriqui_cw).get(f"/referrals/{referral['id']}/").status_code == 404
    assert api_for(chiriqui_cw).get(f"{API}/referrals/{referral['id']}/").status_code == 404
    denied = [e for e in _events("access.denied") if e.object_id == referral["id"]]
    assert [e.actor_id for e in denied] == [str(chiriqui_cw.pk)] * 2
    assert logged_in_client(darien_cw).get(f"/referrals/{referral['id']}/").status_code == 200
    assert api_for(darien_cw).get(f"{API}/referrals/{referral['id']}/").status_code == 200
