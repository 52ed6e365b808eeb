"""Demo data: IOM and DP, their staff, cases and referrals in every status. Never for production."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.actor import actor_for_api_client, actor_for_user
from accounts.choices import Role, Scope
from accounts.models import ApiClient, User
from accounts.services import api_client_create, institution_create, staff_user_create
from referrals import rules, services
from referrals.choices import Status
from referrals.models import Case

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - demo only; refused in production below
USERS = [
    ("IOM", "iom.caseworker", Role.CASEWORKER),
    ("IOM", "iom.caseworker2", Role.CASEWORKER),
    ("IOM", "iom.supervisor", Role.SUPERVISOR),
    ("IOM", "iom.admin", Role.ADMIN),
    ("DP", "dp.caseworker", Role.CASEWORKER),
    ("DP", "dp.supervisor", Role.SUPERVISOR),
    ("DP", "dp.admin", Role.ADMIN),
]
# (path of actions after creation, urgency) — one referral per status.
PATHS = {
    Status.DRAFT: [],
    Status.REQUESTED: ["send"],
    Status.RECEIVED: ["send", "receive"],
    Status.ACCEPTED: ["send", "accept"],
    Status.REJECTED: ["send", ("reject", "Fuera del mandato institucional")],
    Status.IN_PROGRESS: ["send", "accept", "start"],
    Status.ON_HOLD: ["send", "accept", "start", ("hold", "Esperando documentos")],
    Status.COMPLETED: ["send", "accept", "start", ("complete", "Asesoría legal brindada; caso cerrado")],
    Status.FAILED: ["send", "accept", ("fail", "No se logró contactar a la persona")],
    Status.CANCELLED: ["send", ("cancel", "Remitido por error")],
    Status.ENTERED_IN_ERROR: ["send", ("void", "Duplicado")],
}
PEOPLE = [
    ("María José", "Pérez Rondón", "1990-05-01", "female", "VEN", "V-12.345.678"),
    ("Jean", "Baptiste", "1985-11-20", "male", "HTI", "HT-99887766"),
    ("Ana", "Quispe", "2009-03-14", "female", "ECU", "EC-1720034567"),
    ("Yusuf", "Abdi", "1994-07-02", "male", "SOM", "SO-445566"),
    ("Luisa", "Gómez", "1978-01-30", "female", "COL", "CO-80112233"),
    ("Carlos", "Mendoza", "2001-09-09", "male", "VEN", "V-27.111.222"),
]


class Command(BaseCommand):
    help = "Fill the database with demo institutions, users, cases and referrals in every status."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="seed again even if demo data exists")

    def handle(self, *args, force: bool, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("seed_demo refuses to run with DJANGO_ENV=production")
        if Case.objects.filter(institution__code="IOM").exists() and not force:
            self.stdout.write("Demo data already present.")
            self._print_logins()
            return
        with transaction.atomic():
            iom, _ = institution_create(code="IOM", name="Organización Internacional para las Migraciones")
            dp, _ = institution_create(code="DP", name="Defensoría del Pueblo de Panamá")
            users = {}
            for code, username, role in USERS:
                inst = iom if code == "IOM" else dp
                users[username] = staff_user_create(
                    institution=inst,
                    username=username,
                    role=role,
                    password=DEMO_PASSWORD,
                    email=f"{username}@example.org",
                )
            iom_actor = actor_for_user(users["iom.caseworker"])
            dp_actor = actor_for_user(users["dp.caseworker"])
            iom_sup = actor_for_user(users["iom.supervisor"])
            for index, status in enumerate(PATHS):
                given, family, dob, sex, nat, doc = PEOPLE[index % len(PEOPLE)]
                case = services.case_create(
                    actor=iom_actor,
                    subject={
                        "given_name": given,
                        "family_name": family,
                        "date_of_birth": datetime.date.fromisoformat(dob),
                        "sex": sex,
                        "nationality": nat,
                        "languages": ["es"],
                        "document_type": "passport",
                        "document_number": doc,
                        "phone": f"+507 6000-{1000 + index}",
                        "email": "",
                        "current_location": "Lajas Blancas, Darién",
                        "protection_needs": "Sobreviviente de violencia en la ruta; requiere orientación.",
                        # Minors by their age today (the subject rules refuse a minor of 18 or more).
                        "is_minor": rules.age_on(datetime.date.fromisoformat(dob), rules.today_utc()) < 18,
                    },
                    summary="Caso de demostración.",
                )
                referral = services.referral_create(
                    actor=iom_actor,
                    case=case,
                    to_institution=dp,
                    services=["legal_assistance"],
                    urgency=["emergency", "urgent", "normal"][index % 3],
                    reason="Necesita orientación para presentar una queja.",
                    consent={
                        "given": True,
                        "given_by": "self",
                        "method": "verbal",
                        "obtained_at": timezone.now(),
                        "data_categories": ["identity", "documents"],
                    },
                )
                for step in PATHS[status]:
                    action, text = (step, None) if isinstance(step, str) else step
                    sender_side = action in ("send", "cancel", "void")
                    actor = (iom_sup if action == "void" else iom_actor) if sender_side else dp_actor
                    services.referral_transition(
                        actor=actor,
                        referral_id=referral.pk,
                        action=action,
                        reason=text if action != "complete" else None,
                        outcome=text if action == "complete" else None,
                        assign_to_actor=action == "accept",
                    )
            for inst in (iom, dp):
                if not ApiClient.objects.filter(institution=inst, name="demo-partner").exists():
                    client, token = api_client_create(
                        institution=inst,
                        name="demo-partner",
                        scopes=[
                            Scope.REFERRALS_READ,
                            Scope.REFERRALS_WRITE,
                            Scope.AUDIT_READ,
                            Scope.WEBHOOKS_MANAGE,
                        ],
                    )
                    self.stdout.write(f"API token for {inst.code} (shown once): {token}")
                    actor_for_api_client(client)
        self._print_logins()

    def _print_logins(self):
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for code, username, role in USERS:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"  {code:4} {role:11} {username}")
        self.stdout.write(
            "Supervisors and admins also need a second factor: scan the QR code shown at their first "
            "sign-in with an authenticator app, or (demo only) print the current code with "
            "`.venv/bin/python manage.py demo_otp_code iom.supervisor`."
        )
