"""``manage.py seed_demo_node IOM|DP``: demo data for one node of ``./scripts/run --federation`` — the one
institution it hosts, its staff (the logins of ``seed_demo``, same password), an API client, and for IOM a
few open cases. Never for production.

``seed_demo`` puts both institutions in one database; a node hosts one, and a card listing the other would
be refused by the peer hosting it. Referrals from IOM's node to the Defensoría's need the remote institutions
in the directory (not built yet, docs/federation.md): until then the cases here have no referral.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.actor import actor_for_user
from accounts.models import User
from accounts.services import institution_create, staff_user_create
from referrals import services
from referrals.demo import DEMO_PASSWORD, INSTITUTIONS, PEOPLE, demo_api_client, demo_subject
from referrals.demo import USERS as ALL_USERS

# The national staff of each institution (``seed_demo``'s logins): {code: [(username, role)]}.
USERS = {
    code: [(username, role) for inst, username, role in ALL_USERS if inst == code] for code in INSTITUTIONS
}


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
                for index, person in enumerate(PEOPLE[:3]):
                    services.case_create(
                        actor=actor,
                        subject=demo_subject(
                            person,
                            document_number=person[5],
                            phone=f"+507 6000-{1000 + index}",
                            location="Lajas Blancas, Darién",
                            needs="Requiere orientación legal.",
                        ),
                        summary="Caso de demostración.",
                    )
            created = demo_api_client(institution)
            if created is not None:
                self.stdout.write(f"API token for {code} (shown once): {created[1]}")
        self._print_logins(code)

    def _print_logins(self, code: str):
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in USERS[code]:
            self.stdout.write(f"  {code:4} {role:11} {username}")
