"""``manage.py seed_demo_node IOM|DP``: demo data for one node of ``./scripts/run --federation`` — the one
institution it hosts, its staff (the logins of ``seed_demo``, same password), an API client, and for IOM a
few open cases. Never for production.

``seed_demo`` puts both institutions in one database; a node hosts one, and a card listing the other would
be refused by the peer hosting it. Referrals from IOM's node to the Defensoría's need the remote institutions
in the directory (not built yet, docs/federation.md): until then the cases here have no referral.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.actor import actor_for_user
from accounts.choices import Role, Scope
from accounts.models import ApiClient, User
from accounts.services import api_client_create, institution_create, staff_user_create
from referrals import rules, services

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - demo only (seed_demo's); refused in production below
INSTITUTIONS = {
    "IOM": "Organización Internacional para las Migraciones",
    "DP": "Defensoría del Pueblo de Panamá",
}
USERS = {
    "IOM": [
        ("iom.caseworker", Role.CASEWORKER),
        ("iom.caseworker2", Role.CASEWORKER),
        ("iom.supervisor", Role.SUPERVISOR),
        ("iom.admin", Role.ADMIN),
    ],
    "DP": [("dp.caseworker", Role.CASEWORKER), ("dp.supervisor", Role.SUPERVISOR), ("dp.admin", Role.ADMIN)],
}
PEOPLE = [
    ("María José", "Pérez Rondón", "1990-05-01", "female", "VEN", "V-12.345.678"),
    ("Jean", "Baptiste", "1985-11-20", "male", "HTI", "HT-99887766"),
    ("Ana", "Quispe", "2009-03-14", "female", "ECU", "EC-1720034567"),
]


class Command(BaseCommand):
    help = "Demo data for one node of a two-node demonstration: the institution it hosts (IOM or DP)."

    def add_arguments(self, parser):
        parser.add_argument("code", choices=sorted(INSTITUTIONS))

    def handle(self, *args, code: str, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("seed_demo_node refuses to run with DJANGO_ENV=production")
        if User.objects.filter(username=USERS[code][0][0]).exists():
            self.stdout.write("Demo data already present.")
            self._print_logins(code)
            return
        with transaction.atomic():
            institution, _ = institution_create(code=code, name=INSTITUTIONS[code])
            users = {
                username: staff_user_create(
                    institution=institution,
                    username=username,
                    role=role,
                    password=DEMO_PASSWORD,
                    email=f"{username}@example.org",
                )
                for username, role in USERS[code]
            }
            if code == "IOM":
                actor = actor_for_user(users["iom.caseworker"])
                for index, (given, family, dob, sex, nat, doc) in enumerate(PEOPLE):
                    born = datetime.date.fromisoformat(dob)
                    services.case_create(
                        actor=actor,
                        subject={
                            "given_name": given,
                            "family_name": family,
                            "date_of_birth": born,
                            "sex": sex,
                            "nationality": nat,
                            "languages": ["es"],
                            "document_type": "passport",
                            "document_number": doc,
                            "phone": f"+507 6000-{1000 + index}",
                            "email": "",
                            "current_location": "Lajas Blancas, Darién",
                            "protection_needs": "Requiere orientación legal.",
                            "is_minor": rules.age_on(born, rules.today_utc()) < 18,
                        },
                        summary="Caso de demostración.",
                    )
            if not ApiClient.objects.filter(institution=institution, name="demo-partner").exists():
                _client, token = api_client_create(
                    institution=institution,
                    name="demo-partner",
                    scopes=[
                        Scope.REFERRALS_READ,
                        Scope.REFERRALS_WRITE,
                        Scope.AUDIT_READ,
                        Scope.WEBHOOKS_MANAGE,
                    ],
                )
                self.stdout.write(f"API token for {code} (shown once): {token}")
        self._print_logins(code)

    def _print_logins(self, code: str):
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in USERS[code]:
            self.stdout.write(f"  {code:4} {role:11} {username}")
