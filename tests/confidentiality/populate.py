"""A realistic set of personal data, written through the real API and services, for the raw-database scans.

Run as a script (``python -m tests.confidentiality.populate``) it migrates the database of ``DATABASE_URL``,
seeds the demo data and adds these values; the test then reads the database file itself.
"""

from __future__ import annotations

import io
import json
import uuid

#: Distinctive personal values: none of them may appear in clear anywhere in the database.
SUBJECT = {
    "given_name": "Zebulonia Ñandú",
    "family_name": "Quixmarrow-Ybarrondo",
    "date_of_birth": "1971-07-13",
    "sex": "female",
    "nationality": "VEN",
    "languages": ["es", "en"],
    "document_type": "passport",
    "document_number": "qz-7781 2294",
    "phone": "+507 6999-4242",
    "email": "zebulonia.qx@example.net",
    "current_location": "Bajo Chiquito km 7 Xylofrag",
    "protection_needs": "Amenazada por una red Wrexhamite",
    "is_minor": False,
}
SUMMARY = "Sumario-Ultrasecreto-Pellucidar"
REASON = "Motivo-Remision-Gorgonzolax"
STATUS_REASON = "Rechazo-Motivo-Thessalonix"
OUTCOME = "Resultado-Servicio-Kilimanjarox"
NOTE_SENDER = "Nota-Remitente-Quetzalcoax"
NOTE_RECEIVER = "Nota-Receptor-Popocatepex"
CONSENT_DETAILS = "Consentimiento-Detalle-Ozymandix"
WITHDRAWAL = "Retiro-Consentimiento-Zanzibarix"
UPDATED_PHONE = "+507 6111-8383"

#: Every string to look for (case-insensitively), with the normalized document number too.
NEEDLES = [
    "Zebulonia",
    "Ñandú",
    "Quixmarrow",
    "Ybarrondo",
    "1971-07-13",
    "qz-7781 2294",
    "QZ77812294",
    "6999-4242",
    "zebulonia.qx",
    "Xylofrag",
    "Wrexhamite",
    SUMMARY,
    REASON,
    STATUS_REASON,
    OUTCOME,
    NOTE_SENDER,
    NOTE_RECEIVER,
    CONSENT_DETAILS,
    WITHDRAWAL,
    "6111-8383",
]


def needle_forms(needle: str) -> list[bytes]:
    """The byte forms a value could take in a column: UTF-8, JSON-escaped, upper/lower case."""
    forms = {
        needle,
        needle.upper(),
        needle.lower(),
        json.dumps(needle)[1:-1],
        json.dumps(needle.upper())[1:-1],
    }
    return sorted({f.encode() for f in forms} | {f.encode().lower() for f in forms})


def find_needles(blob: bytes) -> list[str]:
    """The needles present in ``blob`` (compared in lower case)."""
    lowered = blob.lower()
    return [n for n in NEEDLES if any(form.lower() in lowered for form in needle_forms(n))]


#: The consents of these referrals were given in writing.
WRITTEN = {"method": "written"}


def populate() -> dict:
    """Write every kind of personal value through the partner API (and the services where the API has no
    field for it). Returns ids only."""
    from django.test import Client

    from accounts.actor import actor_for_api_client
    from accounts.choices import Scope
    from accounts.models import ApiClient
    from accounts.services import api_client_create, institution_create
    from referrals import services
    from tests.builders import referral_body, referral_through_services

    iom, _ = institution_create(code="IOM", name="IOM")
    dp, _ = institution_create(code="DP", name="Defensoría del Pueblo")
    scopes = [s.value for s in Scope]
    _iom_client, iom_token = api_client_create(
        institution=iom, name=f"scan-{uuid.uuid4().hex[:6]}", scopes=scopes
    )
    _dp_client, dp_token = api_client_create(
        institution=dp, name=f"scan-{uuid.uuid4().hex[:6]}", scopes=scopes
    )
    client = Client()
    as_iom = {"HTTP_AUTHORIZATION": f"Bearer {iom_token}"}
    as_dp = {"HTTP_AUTHORIZATION": f"Bearer {dp_token}"}

    def post(path, body, auth, key=None):
        extra = dict(auth)
        if key:
            extra["HTTP_IDEMPOTENCY_KEY"] = key
        response = client.post(f"/api/v1/{path}", body, content_type="application/json", **extra)
        assert response.status_code in (200, 201), (path, response.status_code)
        return response.json()

    def get(path, auth):
        response = client.get(f"/api/v1/{path}", **auth)
        assert response.status_code == 200, (path, response.status_code)
        return response.json()

    body = {"subject": SUBJECT, "summary": SUMMARY}
    case = post("cases/", body, as_iom, key="scan-case-1")
    post("cases/", body, as_iom, key="scan-case-1")  # an idempotent replay: nothing stored in clear
    get(f"cases/{case['id']}/", as_iom)
    get("cases/?document_number=QZ-7781-2294", as_iom)

    everything = ("identity", "contact", "documents", "protection_needs")
    referral = post(
        "referrals/",
        referral_body(
            case["id"],
            "DP",
            everything,
            reason=REASON,
            requested=("legal_assistance", "protection"),
            **WRITTEN,
        ),
        as_iom,
        key="scan-ref-1",
    )
    rid = referral["id"]
    post(f"referrals/{rid}/send/", {}, as_iom)
    post(f"referrals/{rid}/accept/", {}, as_dp)
    post(f"referrals/{rid}/start/", {}, as_dp)
    post(f"referrals/{rid}/notes/", {"body": NOTE_SENDER}, as_iom, key="scan-note-1")
    post(f"referrals/{rid}/notes/", {"body": NOTE_RECEIVER}, as_dp)
    get(f"referrals/{rid}/", as_dp)
    get(f"referrals/{rid}/notes/", as_dp)
    post(f"referrals/{rid}/complete/", {"outcome": OUTCOME}, as_dp)

    rejected = post(
        "referrals/",
        referral_body(case["id"], "DP", urgency="normal", reason=REASON, requested=("health",), **WRITTEN),
        as_iom,
    )
    post(f"referrals/{rejected['id']}/send/", {}, as_iom)
    post(f"referrals/{rejected['id']}/reject/", {"reason": STATUS_REASON}, as_dp)

    # Consent details have no API field: the services take them.
    iom_actor = actor_for_api_client(ApiClient.objects.get(institution=iom, name=_iom_client.name))
    from referrals.models import Case

    case_obj = Case.objects.get(pk=case["id"])
    third = referral_through_services(
        sender=iom_actor,
        to=dp,
        case=case_obj,
        categories=("contact",),
        requested=("shelter",),
        urgency="emergency",
        reason=REASON,
        consent_fields={**WRITTEN, "details": CONSENT_DETAILS},
    )
    post(f"referrals/{third.pk}/send/", {}, as_iom)
    post(f"referrals/{third.pk}/consent/withdraw/", {"reason": WITHDRAWAL}, as_iom)
    services.case_update(actor=iom_actor, case=case_obj, subject={"phone": UPDATED_PHONE})
    return {"case": case["id"], "referrals": [rid, rejected["id"], str(third.pk)]}


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0, stdout=io.StringIO())
    print(json.dumps(populate()))


if __name__ == "__main__":
    main()
