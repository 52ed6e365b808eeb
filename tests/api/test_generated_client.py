"""A partner's developer generates a client from the served schema with ``openapi-python-client`` and drives
a referral's lifecycle through it against a live server (issue 22 item 7): the schema stays usable.

Create a case, create a referral, send it, list, read it, accept it as the other institution, a 409 and a
404 parsed as problems, a note, the notes and the events — every answer parsed into the generated models.
The generator runs offline on the schema this server serves.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid

import httpx
import pytest

from accounts.choices import Scope
from accounts.services import api_client_create

PACKAGE = "partner_client"
CONFIG = f"project_name_override: partner-client\npackage_name_override: {PACKAGE}\npost_hooks: []\n"


def _token(institution) -> str:
    _client, token = api_client_create(
        institution=institution, name=f"generated-{uuid.uuid4().hex[:8]}", scopes=[s.value for s in Scope]
    )
    return token


@pytest.fixture
def generated(live_server, tmp_path, iom):
    """The client package generated from the live server's schema, imported."""
    schema = httpx.get(
        f"{live_server.url}/api/v1/schema/?format=json",
        headers={"Authorization": f"Bearer {_token(iom)}"},
        timeout=60,
    )
    assert schema.status_code == 200, schema.text[:300]
    (tmp_path / "schema.json").write_bytes(schema.content)
    (tmp_path / "config.yaml").write_text(CONFIG)
    run = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(tmp_path / "schema.json"),
            "--config",
            str(tmp_path / "config.yaml"),
            "--output-path",
            str(tmp_path / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Error" not in run.stdout, run.stdout[-2000:]
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_a_generated_client_drives_the_lifecycle(transactional_db, generated, live_server, iom, dp):
    cases = importlib.import_module(f"{PACKAGE}.api.cases.cases_create")
    create = importlib.import_module(f"{PACKAGE}.api.referrals.referrals_create")
    listing = importlib.import_module(f"{PACKAGE}.api.referrals.referrals_list")
    detail = importlib.import_module(f"{PACKAGE}.api.referrals.referrals_retrieve")
    notes_create = importlib.import_module(f"{PACKAGE}.api.referrals.referrals_notes_create")
    notes_list = importlib.import_module(f"{PACKAGE}.api.referrals.referrals_notes_list")
    events = importlib.import_module(f"{PACKAGE}.api.referrals.referrals_events_list")
    send = importlib.import_module(f"{PACKAGE}.api.referral_lifecycle.referrals_send")
    accept = importlib.import_module(f"{PACKAGE}.api.referral_lifecycle.referrals_accept")
    models = importlib.import_module(f"{PACKAGE}.models")
    iom_client = generated.AuthenticatedClient(base_url=live_server.url, token=_token(iom))
    dp_client = generated.AuthenticatedClient(base_url=live_server.url, token=_token(dp))
    steps = []

    case = cases.sync_detailed(
        client=iom_client,
        body=models.CaseInputRequest.from_dict(
            {"subject": {"given_name": "Ana", "family_name": "Pérez", "sex": "female", "nationality": "VEN"}}
        ),
    )
    assert case.status_code == 201 and isinstance(case.parsed, models.CaseCreatedOutput)
    steps.append("case created")

    referral = create.sync_detailed(
        client=iom_client,
        body=models.ReferralInputRequest.from_dict(
            {
                "case": str(case.parsed.id),
                "to_institution": "DP",
                "services": ["legal_assistance"],
                "urgency": "urgent",
                "reason": "Orientación legal",
                "consent": {
                    "given": True,
                    "given_by": "self",
                    "method": "verbal",
                    "obtained_at": "2026-12-01T14:30:00Z",
                    "data_categories": ["identity"],
                },
            }
        ),
        idempotency_key=str(uuid.uuid4()),
    )
    assert referral.status_code == 201 and isinstance(referral.parsed, models.ReferralOutput)
    assert referral.parsed.status.value == "draft"
    referral_id = referral.parsed.id
    steps.append("referral created")

    sent = send.sync_detailed(referral_id, client=iom_client, if_match=referral.headers["ETag"])
    assert sent.status_code == 200 and sent.parsed.status.value == "requested"
    steps.append("sent")

    page = listing.sync_detailed(client=dp_client, direction=listing.ReferralsListDirection("inbound"))
    assert page.status_code == 200 and [item.id for item in page.parsed.results] == [referral_id]
    steps.append("listed")

    shown = detail.sync_detailed(referral_id, client=dp_client)
    assert shown.status_code == 200 and shown.parsed.subject.given_name == "Ana"
    steps.append("detail")

    accepted = accept.sync_detailed(referral_id, client=dp_client)
    assert accepted.status_code == 200 and accepted.parsed.status.value == "accepted"
    steps.append("accepted by the other institution")

    again = accept.sync_detailed(referral_id, client=dp_client)
    assert again.status_code == 409 and isinstance(again.parsed, models.Problem)
    assert again.parsed.type_ == "/problems/invalid-transition" and again.parsed.status == 409
    steps.append("409 parsed as a problem")

    missing = detail.sync_detailed(uuid.uuid4(), client=dp_client)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
    assert missing.parsed.type_ == "/problems/not-found"
    steps.append("404 parsed as a problem")

    note = notes_create.sync_detailed(
        referral_id,
        client=dp_client,
        body=models.NoteInputRequest.from_dict({"body": "Cita el 5 de diciembre."}),
    )
    assert note.status_code == 201 and note.parsed.author_institution == "DP"
    steps.append("note added")

    notes = notes_list.sync_detailed(referral_id, client=iom_client)
    assert notes.status_code == 200 and [n.body for n in notes.parsed.results] == ["Cita el 5 de diciembre."]
    steps.append("notes listed")

    timeline = events.sync_detailed(referral_id, client=iom_client)
    assert timeline.status_code == 200
    assert [e.action for e in timeline.parsed.results][-2:] == ["send", "accept"]
    steps.append("events listed")

    assert len(steps) == 11
