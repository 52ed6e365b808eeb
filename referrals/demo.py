"""The pieces of the demonstration data that ``seed_demo`` (both institutions in one database) and
``seed_demo_node`` (one node of ``./scripts/run --federation``) share: the institutions, the staff logins
and their password, the people of the demo cases, a demo subject and the demo partner client. Never for
production (both commands refuse to run there)."""

from __future__ import annotations

import datetime

from accounts.choices import Role, Scope
from accounts.models import ApiClient
from accounts.services import api_client_create
from referrals import rules

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - demo only; the commands refuse to run in production
INSTITUTIONS = {
    "IOM": "Organización Internacional para las Migraciones",
    "DP": "Defensoría del Pueblo de Panamá",
}
# The institutions' national staff: (institution, username, role).
USERS = [
    ("IOM", "iom.caseworker", Role.CASEWORKER),
    ("IOM", "iom.caseworker2", Role.CASEWORKER),
    ("IOM", "iom.supervisor", Role.SUPERVISOR),
    ("IOM", "iom.admin", Role.ADMIN),
    ("DP", "dp.caseworker", Role.CASEWORKER),
    ("DP", "dp.supervisor", Role.SUPERVISOR),
    ("DP", "dp.admin", Role.ADMIN),
]
# (given name, family name, date of birth, sex, nationality, document number)
PEOPLE = [
    ("María José", "Pérez Rondón", "1990-05-01", "female", "VEN", "V-12.345.678"),
    ("Jean", "Baptiste", "1985-11-20", "male", "HTI", "HT-99887766"),
    ("Ana", "Quispe", "2009-03-14", "female", "ECU", "EC-1720034567"),
    ("Yusuf", "Abdi", "1994-07-02", "male", "SOM", "SO-445566"),
    ("Luisa", "Gómez", "1978-01-30", "female", "COL", "CO-80112233"),
    ("Carlos", "Mendoza", "2001-09-09", "male", "VEN", "V-27.111.222"),
]


def demo_subject(person: tuple, *, document_number: str, phone: str, location: str, needs: str) -> dict:
    """The subject of a demo case for one of ``PEOPLE``; a minor by their age today (the subject rules
    refuse a minor of 18 or more)."""
    given, family, dob, sex, nationality, _document = person
    born = datetime.date.fromisoformat(dob)
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": born,
        "sex": sex,
        "nationality": nationality,
        "languages": ["es"],
        "document_type": "passport",
        "document_number": document_number,
        "phone": phone,
        "email": "",
        "current_location": location,
        "protection_needs": needs,
        "is_minor": rules.age_on(born, rules.today_utc()) < 18,
    }


def demo_api_client(institution):
    """The institution's ``demo-partner`` API client, created once: ``(client, token)``, or ``None`` when
    it exists already (its token was shown when it was made)."""
    if ApiClient.objects.filter(institution=institution, name="demo-partner").exists():
        return None
    return api_client_create(
        institution=institution,
        name="demo-partner",
        scopes=[Scope.REFERRALS_READ, Scope.REFERRALS_WRITE, Scope.AUDIT_READ, Scope.WEBHOOKS_MANAGE],
    )
