"""The supervisors' audit page (issue 12, item 7; issue 14): search by reference, by the short id shown and
by the action's label in either language; objects shown by reference; outcomes in the reader's language;
the latest signed checkpoint; one CSV export for the web and the API; one visibility predicate."""

from __future__ import annotations

import csv
import io
import re

import pytest

from audit import checkpoints
from audit.exports import CSV_COLUMNS
from audit.models import AuditEvent
from audit.recorder import record
from audit.selectors import EventFilters, events_filtered, events_visible_to
from web import selectors


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def sequences(page: str) -> set[int]:
    return {int(s) for s in re.findall(r'data-sequence="(\d+)"', page)}


def read_csv(response) -> list[dict]:
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture
def sent(iom, dp, iom_actor, dp_caseworker, make_referral, web_client):
    """IOM sends a referral to DP; a DP caseworker reads it on its page."""
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    assert web_client(dp_caseworker).get(f"/referrals/{referral.pk}/").status_code == 200
    return referral


def _viewed(referral) -> AuditEvent:
    return AuditEvent.objects.get(action="referral.viewed", object_id=str(referral.pk))


def test_search_by_the_referrals_reference_any_case(sent, iom_supervisor_client):
    viewed = _viewed(sent)
    for text in (sent.reference, sent.reference.lower()):
        found = sequences(html(iom_supervisor_client.get(f"/audit/?object_id={text}")))
        assert viewed.sequence in found
        assert all(
            AuditEvent.objects.get(sequence=s).object_id == str(sent.pk) for s in found
        )  # only that referral's events


def test_search_by_the_cases_reference_finds_its_referrals_events(sent, iom_supervisor_client):
    found = sequences(html(iom_supervisor_client.get(f"/audit/?object_id={sent.case.reference}")))
    assert _viewed(sent).sequence in found
    assert AuditEvent.objects.get(action="case.created", object_id=str(sent.case_id)).sequence in found


def test_a_reference_of_an_institution_not_involved_finds_nothing(sent, third_supervisor_client):
    assert sequences(html(third_supervisor_client.get(f"/audit/?object_id={sent.reference}"))) == set()


def test_search_by_the_short_id_shown(sent, iom_supervisor_client):
    viewed = _viewed(sent)
    short = str(sent.pk)[:8]
    found = sequences(html(iom_supervisor_client.get(f"/audit/?object_id={short}")))
    assert viewed.sequence in found
    assert sequences(html(iom_supervisor_client.get(f"/audit/?object_id={short.upper()}"))) == found


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("acceso denegado", "es"),
        ("ACCESO DENEGADO", "es"),
        ("access denied", "en"),
        ("access.denied", "es"),
        ("denegado", "es"),
    ],
)
def test_search_by_the_actions_label_in_either_language(
    iom, iom_supervisor, iom_supervisor_client, text, language
):
    from accounts.actor import actor_for_user

    denied = record(actor=actor_for_user(iom_supervisor), action="access.denied", outcome="denied")
    record(actor=actor_for_user(iom_supervisor), action="case.viewed")
    found = sequences(
        html(iom_supervisor_client.get("/audit/", {"action": text}, HTTP_ACCEPT_LANGUAGE=language))
    )
    assert denied.sequence in found
    assert {AuditEvent.objects.get(sequence=s).action for s in found} == {"access.denied"}


def test_an_unknown_label_finds_nothing_rather_than_everything(sent, iom_supervisor_client):
    page = html(iom_supervisor_client.get("/audit/?action=nada parecido"))
    assert sequences(page) == set()


def test_objects_are_shown_by_reference(sent, iom_supervisor_client):
    page = html(iom_supervisor_client.get("/audit/?action=referral.viewed"))
    line = re.search(rf'<tr data-sequence="{_viewed(sent).sequence}".*?</tr>', page, re.S).group(0)
    assert sent.reference in line
    assert f"referral {str(sent.pk)[:8]}" not in line


def test_a_denial_reads_in_one_language(iom, iom_supervisor, iom_supervisor_client, iom_actor, make_case):
    from accounts.actor import actor_for_user

    case = make_case(iom_actor)
    record(
        actor=actor_for_user(iom_supervisor),
        action="access.denied",
        object_type="case",
        object_id=case.pk,
        case_id=case.pk,
        outcome="denied",
    )
    page = html(iom_supervisor_client.get("/audit/", HTTP_ACCEPT_LANGUAGE="es"))
    assert "acceso denegado" in page and "(denied)" not in page and ">denied<" not in page
    assert "denegado" in page


def test_the_latest_checkpoint_and_how_to_get_them_all(sent, iom_supervisor_client):
    page = html(iom_supervisor_client.get("/audit/"))
    assert "/api/v1/audit/checkpoints/" in page and "verify_audit --checkpoints" in page
    head = AuditEvent.objects.order_by("-sequence").first()
    made = checkpoints.as_served(checkpoints.create(sequence=head.sequence, hash_=head.hash, verified=True))
    page = html(iom_supervisor_client.get("/audit/"))
    assert f'data-checkpoint="signature">{made["signature"]}<' in page
    assert f'data-checkpoint="hash">{made["hash"]}<' in page
    assert f'data-checkpoint="at">{made["at"]}<' in page
    assert f'data-checkpoint="root_hash">{made["root_hash"]}<' in page
    assert 'data-witnesses="none"' in page


def test_the_latest_checkpoint_shows_who_witnessed_it_and_when(sent, iom_supervisor_client):
    import base64
    import time

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit import notes

    head = AuditEvent.objects.order_by("-sequence").first()
    made = checkpoints.as_served(checkpoints.create(sequence=head.sequence, hash_=head.hash, verified=True))
    key = Ed25519PrivateKey.from_private_bytes(b"w" * 32)
    vkey = notes.vkey("dp.example.org/witness", notes.COSIGNATURE_V1, key.public_key().public_bytes_raw())
    body = made["note"].split("\n\n", 1)[0] + "\n"
    signature = base64.b64encode(notes.cosign(body, key, int(time.time()))).decode()
    stored = checkpoints.add_cosignature(head.sequence, vkey, signature)
    page = html(iom_supervisor_client.get("/audit/"))
    assert 'data-witness="dp.example.org/witness"' in page
    witnessed = re.search(r'data-witness="dp.example.org/witness">([^<]*)<', page).group(1)
    assert checkpoints.format_at(stored.at) in witnessed
    assert 'data-witnesses="none"' not in page


# --- one export, one predicate -----------------------------------------------------------------------------


def test_the_web_and_the_api_export_the_same_columns_and_neutralise_formulas(
    sent, iom, iom_supervisor_client, api_as
):
    api = api_as(iom, scopes=["audit:read"])
    # A request id that a spreadsheet would read as a formula (allowed by the X-Request-ID syntax).
    assert api.get("/api/v1/audit/events/", HTTP_X_REQUEST_ID="-2-3").status_code == 200
    assert api.get("/api/v1/audit/events/export/", HTTP_X_REQUEST_ID="-2-3").status_code == 200
    assert AuditEvent.objects.get(action="audit.exported").request_id == "-2-3"
    web_rows = read_csv(iom_supervisor_client.get("/audit/export.csv"))
    api_rows = read_csv(api.get("/api/v1/audit/events/export/"))
    common = {r["id"] for r in web_rows} & {r["id"] for r in api_rows}
    assert len(common) >= 5
    by_id = {r["id"]: r for r in api_rows}
    for row in web_rows:
        if row["id"] in common:
            assert row == by_id[row["id"]]
    assert any(r["request_id"] == "'-2-3" for r in api_rows)  # a formula-looking request id, neutralised
    assert any(r["request_id"] == "'-2-3" for r in web_rows)
    exported = AuditEvent.objects.filter(action="audit.exported").order_by("sequence")
    assert [e.object_type for e in exported] == ["audit_log", "audit_log", "audit_log"]


def test_one_predicate_for_web_and_api(sent, iom_actor, dp_actor, third, make_user):
    """The web's selectors go through audit.selectors.events_visible_to: same events for each institution."""
    from accounts.actor import actor_for_user
    from accounts.choices import Role

    third_actor = actor_for_user(make_user(third, Role.SUPERVISOR, username="un.sup"))
    for actor in (iom_actor, dp_actor, third_actor):
        web = set(selectors.audit_events_filtered(actor, {}).values_list("sequence", flat=True))
        api = set(events_filtered(actor, EventFilters()).values_list("sequence", flat=True))
        assert web == api == set(events_visible_to(actor).values_list("sequence", flat=True))
    assert set(events_visible_to(third_actor).values_list("action", flat=True)) <= {"auth.login"}


def test_every_recorded_action_has_a_label():
    """Each audit action the code records reads as words on the supervisors' page, not as a code."""
    import re
    from pathlib import Path

    from web.presentation import AUDIT_ACTION_LABELS

    root = Path(__file__).resolve().parents[2]
    recorded = set()
    for package in (
        "accounts",
        "audit",
        "federation",
        "matching",
        "notifications",
        "plumbing",
        "referrals",
        "reporting",
        "web",
    ):
        for path in (root / package).rglob("*.py"):
            recorded |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', path.read_text()))
    assert recorded - set(AUDIT_ACTION_LABELS) == set()


def test_the_action_filter_offers_labels_in_the_readers_language_not_codes(iom_supervisor_client):
    """Issue 22, item 6: the picker listed raw codes (``referral.viewed``) under each Spanish label."""
    page = html(iom_supervisor_client.get("/audit/", HTTP_ACCEPT_LANGUAGE="es"))
    picker = re.search(r'<datalist id="audit-actions">(.*?)</datalist>', page, re.S).group(1)
    options = re.findall(r'<option value="([^"]*)"></option>', picker)
    assert "consultó una remisión con datos personales" in options
    assert "referral.viewed" not in picker
    assert not [o for o in options if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", o)]
