"""Demo data: IOM and DP, their offices and staff, cases and referrals in every status, referrals routed to
offices. Never for production."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.actor import actor_for_api_client, actor_for_user
from accounts.choices import Role
from accounts.models import User
from accounts.services import institution_create, office_pause, office_save, staff_user_create
from referrals import services
from referrals.choices import Status
from referrals.demo import DEMO_PASSWORD, INSTITUTIONS, PEOPLE, USERS, demo_api_client, demo_subject
from referrals.models import Case

# Offices (issue 20, contract §7.2): (institution, code, name, province, services, languages). Real places:
# Metetí (Darién), David (Chiriquí, near the Costa Rican border at Paso Canoas), Colón, Changuinola (Bocas
# del Toro), Panama City.
OFFICES = [
    (
        "IOM",
        "DARIEN",
        "OIM — Oficina de terreno de Darién (Metetí)",
        "PA-5",
        ["protection", "health", "mental_health_psychosocial", "basic_needs", "shelter"],
        ["es", "en", "fr", "ht"],
    ),
    (
        "IOM",
        "CHIRIQUI",
        "OIM — Oficina de terreno de Chiriquí (David)",
        "PA-4",
        ["protection", "basic_needs", "assisted_voluntary_return", "documentation_regularization"],
        ["es", "en", "ht"],
    ),
    (
        "IOM",
        "PANAMA",
        "OIM — Oficina de Ciudad de Panamá",
        "PA-8",
        ["protection", "assisted_voluntary_return", "anti_trafficking", "family_reunification"],
        ["es", "en", "fr"],
    ),
    (
        "DP",
        "DARIEN",
        "Defensoría del Pueblo — Oficina Regional de Darién (Metetí)",
        "PA-5",
        ["legal_assistance", "human_rights_complaint", "child_protection"],
        ["es"],
    ),
    (
        "DP",
        "CHIRIQUI",
        "Defensoría del Pueblo — Oficina Regional de Chiriquí (David)",
        "PA-4",
        ["legal_assistance", "human_rights_complaint"],
        ["es", "en"],
    ),
    (
        "DP",
        "COLON",
        "Defensoría del Pueblo — Oficina Regional de Colón",
        "PA-3",
        ["legal_assistance", "human_rights_complaint"],
        ["es"],
    ),
    (
        "DP",
        "BOCAS",
        "Defensoría del Pueblo — Oficina Regional de Bocas del Toro (Changuinola)",
        "PA-1",
        ["legal_assistance", "human_rights_complaint"],
        ["es", "en"],
    ),
    (
        "DP",
        "PANAMA",
        "Defensoría del Pueblo — Sede (Ciudad de Panamá)",
        "PA-8",
        ["legal_assistance", "human_rights_complaint", "child_protection", "gbv_response"],
        ["es", "en"],
    ),
]
# Office staff: a supervisor and a caseworker in every office, a second caseworker in the Darién offices.
OFFICE_USERS = [
    (code, office, f"{code.lower()}.{office.lower()}.{suffix}", role)
    for code, office, *_rest in OFFICES
    for suffix, role in (
        ("caseworker", Role.CASEWORKER),
        *((("caseworker2", Role.CASEWORKER),) if office == "DARIEN" else ()),
        ("supervisor", Role.SUPERVISOR),
    )
]
# Referrals made in the field and routed at send to the receiver's office in their province (contract
# §7.2): (sending office, receiver, province, services, where the person is, path on the receiver's side).
ROUTED = [
    (
        ("IOM", "DARIEN"),
        "DP",
        "PA-5",
        ["legal_assistance"],
        "Estación de Recepción Migratoria Lajas Blancas",
        [],
    ),
    (("IOM", "DARIEN"), "DP", "PA-5", ["human_rights_complaint"], "Metetí, Darién", ["accept"]),
    (("IOM", "DARIEN"), "DP", "PA-5", ["child_protection"], "Bajo Chiquito, Darién", ["receive"]),
    (("IOM", "CHIRIQUI"), "DP", "PA-4", ["legal_assistance"], "Paso Canoas, Chiriquí", ["accept", "start"]),
    (("IOM", "PANAMA"), "DP", "PA-8", ["gbv_response"], "Ciudad de Panamá", []),
    (("IOM", "PANAMA"), "DP", "PA-1", ["legal_assistance"], "Changuinola, Bocas del Toro", ["accept"]),
    (("DP", "DARIEN"), "IOM", "PA-5", ["health", "protection"], "Metetí, Darién", ["accept"]),
    (("DP", "CHIRIQUI"), "IOM", "PA-4", ["assisted_voluntary_return"], "David, Chiriquí", []),
    (("DP", "COLON"), "IOM", "PA-3", ["protection"], "Colón", []),  # no IOM office in Colón: national intake
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
            iom, _ = institution_create(code="IOM", name=INSTITUTIONS["IOM"])
            dp, _ = institution_create(code="DP", name=INSTITUTIONS["DP"])
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
            offices = {}
            for code, office_code, name, province, offered, languages in OFFICES:
                offices[code, office_code], _created = office_save(
                    institution=iom if code == "IOM" else dp,
                    code=office_code,
                    name=name,
                    province=province,
                    services=offered,
                    languages=languages,
                )
            for code, office_code, username, role in OFFICE_USERS:
                users[username] = staff_user_create(
                    institution=iom if code == "IOM" else dp,
                    username=username,
                    role=role,
                    password=DEMO_PASSWORD,
                    email=f"{username}@example.org",
                    office=offices[code, office_code],
                )
            iom_actor = actor_for_user(users["iom.caseworker"])
            dp_actor = actor_for_user(users["dp.caseworker"])
            iom_sup = actor_for_user(users["iom.supervisor"])
            by_status = {}
            for index, status in enumerate(PATHS):
                person = PEOPLE[index % len(PEOPLE)]
                case = services.case_create(
                    actor=iom_actor,
                    subject=demo_subject(
                        person,
                        document_number=person[5],
                        phone=f"+507 6000-{1000 + index}",
                        location="Lajas Blancas, Darién",
                        needs="Sobreviviente de violencia en la ruta; requiere orientación.",
                    ),
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
                by_status[status] = referral
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
            self._routed_referrals(users, {"IOM": iom, "DP": dp})
            # A national supervisor moves a referral from the national intake to an office (route), and the
            # Bocas del Toro office is paused for a few weeks: senders see why; nothing new is routed there.
            services.referral_route(
                actor=actor_for_user(users["dp.supervisor"]),
                referral_id=by_status[Status.RECEIVED].pk,
                to_office=offices["DP", "COLON"],
            )
            office_pause(
                office=offices["DP", "BOCAS"],
                until=timezone.localdate() + datetime.timedelta(days=21),
                reason="Sin abogado hasta fin de mes; envíe a la sede de Panamá.",
            )
            for inst in (iom, dp):
                created = demo_api_client(inst)
                if created is not None:
                    client, token = created
                    self.stdout.write(f"API token for {inst.code} (shown once): {token}")
                    actor_for_api_client(client)
        self._print_logins()

    def _routed_referrals(self, users: dict, institutions: dict) -> None:
        """Referrals made by office staff in the field, routed at send by province and services."""
        for index, (origin, receiver, province, requested, place, path) in enumerate(ROUTED):
            sender = actor_for_user(users[f"{origin[0].lower()}.{origin[1].lower()}.caseworker"])
            person = PEOPLE[(index + 3) % len(PEOPLE)]
            case = services.case_create(
                actor=sender,
                subject=demo_subject(
                    person,
                    document_number=f"{person[5]}-{index}",
                    phone=f"+507 6100-{2000 + index}",
                    location=place,
                    needs="Requiere orientación y acompañamiento.",
                ),
                summary="Caso de demostración atendido en una oficina regional.",
            )
            referral = services.referral_create(
                actor=sender,
                case=case,
                to_institution=institutions[receiver],
                services=requested,
                urgency=["urgent", "normal", "emergency"][index % 3],
                reason="Remisión de demostración a la oficina de la provincia.",
                province=province,
                consent={
                    "given": True,
                    "given_by": "self",
                    "method": "verbal",
                    "obtained_at": timezone.now(),
                    "data_categories": ["identity", "contact"],
                },
            )
            referral = services.referral_transition(actor=sender, referral_id=referral.pk, action="send")
            office = referral.to_office
            if office is None:  # no office of the receiver there: its national staff work on it
                receiver_name = f"{receiver.lower()}.caseworker"
            else:
                receiver_name = f"{receiver.lower()}.{office.code.lower()}.caseworker"
            for action in path:
                services.referral_transition(
                    actor=actor_for_user(users[receiver_name]),
                    referral_id=referral.pk,
                    action=action,
                    assign_to_actor=action == "accept",
                )

    def _print_logins(self):
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for code, username, role in USERS:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"  {code:4} {role:11} {username}")
        self.stdout.write("Office staff (same password; they see their office's referrals):")
        for code, office, username, role in OFFICE_USERS:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"  {code:4} {role:11} {username:26} {code}/{office}")
        self.stdout.write(
            "Supervisors and admins also need a second factor: scan the QR code shown at their first "
            "sign-in with an authenticator app, or (demo only) print the current code with "
            "`.venv/bin/python manage.py demo_otp_code iom.supervisor`."
        )
