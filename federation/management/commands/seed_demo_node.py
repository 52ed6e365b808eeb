"""``manage.py seed_demo_node IOM|DP [--referrals [--wait SECONDS]]``: demo data for one node of
``./scripts/run --federation``. Never for production.

Without ``--referrals``: the one institution the node hosts, its staff (the logins of ``seed_demo``, same
password), an API client, and for IOM a few open cases. ``seed_demo`` puts both institutions in one
database; a node hosts one, and a card listing the other would be refused by the peer hosting it.

With ``--referrals``, once the nodes are paired (the Defensoría is then a remote institution at IOM's node,
from its pinned card), each node's part of referrals that cross, through the core's services as a person
would act:

- ``IOM``: its caseworker refers the demo cases to the Defensoría with the person's consent (a different
  service and consented categories each) and sends them; the outbox delivers the consented projection to
  the Defensoría's node once it listens;
- ``DP``: waits (``--wait``) for those copies to arrive at its node, then its caseworker accepts one (the
  acceptance is decided by IOM's node, which must be reachable) and writes a note on another (it reaches
  IOM's node through the outbox).

Each part is done once: run again, it only reports.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.actor import actor_for_user
from accounts.models import Institution, User
from accounts.services import institution_create, staff_user_create
from referrals import services
from referrals.choices import Status
from referrals.demo import DEMO_PASSWORD, INSTITUTIONS, PEOPLE, demo_api_client, demo_subject
from referrals.demo import USERS as ALL_USERS
from referrals.models import Case, Referral

# The national staff of each institution (``seed_demo``'s logins): {code: [(username, role)]}.
USERS = {
    code: [(username, role) for inst, username, role in ALL_USERS if inst == code] for code in INSTITUTIONS
}
# The referrals that cross (IOM → DP), one per demo case of IOM's node, in the cases' order: (services,
# urgency, consented data categories, reason, what the Defensoría does with it at its node).
CROSSING = [
    (
        ["legal_assistance"],
        "urgent",
        ["identity", "protection_needs"],
        "Necesita orientación legal.",
        "accept",
    ),
    (["human_rights_complaint"], "normal", ["identity", "contact"], "Desea presentar una queja.", "note"),
    (["child_protection"], "emergency", ["identity", "documents"], "Adolescente sin acompañante.", None),
]
NOTE = "Recibido en la Defensoría: le llamaremos para agendar una cita."


class Command(BaseCommand):
    help = "Demo data for one node of a two-node demonstration: the institution it hosts (IOM or DP)."

    def add_arguments(self, parser):
        parser.add_argument("code", choices=sorted(INSTITUTIONS))
        parser.add_argument(
            "--referrals",
            action="store_true",
            help="after pairing: IOM sends its demo referrals to DP; DP accepts one and notes another",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            help="DP: seconds to wait for IOM's referrals to arrive at this node (default: none)",
        )

    def handle(self, *args, code: str, referrals: bool, wait: float, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("seed_demo_node refuses to run with DJANGO_ENV=production")
        if referrals:
            if code == "IOM":
                self._send_referrals()
            else:
                self._answer_referrals(wait)
            return
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

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username}: run seed_demo_node without --referrals first")
        return user

    def _send_referrals(self) -> None:
        """IOM's caseworker refers the demo cases to the Defensoría, a remote institution once its node's
        card is pinned, and sends them: ``send`` queues each consented projection in the outbox."""
        dp = Institution.objects.filter(code="DP").first()
        if dp is None or not dp.is_remote:
            raise CommandError("DP is not a remote institution here: pin the Defensoría's node's card first")
        user = self._user("iom.caseworker")
        if Referral.objects.filter(from_institution=user.institution, to_institution=dp).exists():
            self.stdout.write("Demo referrals to DP already sent.")
            return
        actor = actor_for_user(user)
        cases = Case.objects.filter(institution=user.institution).order_by("created_at", "reference")
        sent = []
        with transaction.atomic():
            for case, (requested, urgency, categories, reason, _then) in zip(cases, CROSSING, strict=False):
                referral = services.referral_create(
                    actor=actor,
                    case=case,
                    to_institution=dp,
                    services=requested,
                    urgency=urgency,
                    reason=reason,
                    consent={
                        "given": True,
                        "given_by": "self",
                        "method": "verbal",
                        "obtained_at": timezone.now(),
                        "data_categories": categories,
                    },
                )
                services.referral_transition(actor=actor, referral_id=referral.pk, action="send")
                sent.append(referral.reference)
        self.stdout.write(f"Sent to DP's node ({dp.node}): {', '.join(sent)} (delivered by the outbox).")

    def _answer_referrals(self, wait: float) -> None:
        """The Defensoría's caseworker, at its node, accepts the first of IOM's referrals (IOM's node, their
        authority, decides) and writes a note on the second (it travels through the outbox)."""
        user = self._user("dp.caseworker")
        copies = Referral.objects.filter(to_institution=user.institution, from_institution__code="IOM")
        deadline = time.monotonic() + wait
        while copies.count() < len(CROSSING) and time.monotonic() < deadline:
            time.sleep(0.5)
        arrived = {tuple(r.services): r for r in copies.exclude(from_institution__node="")}
        if len(arrived) < len(CROSSING):
            raise CommandError(
                f"{len(arrived)} of IOM's {len(CROSSING)} demo referrals have arrived at this node "
                "(is IOM's node running and paired? its federation_status shows the outbox)"
            )
        actor = actor_for_user(user)
        for requested, _urgency, _categories, _reason, then in CROSSING:
            referral = arrived[tuple(requested)]
            if then == "accept":
                if referral.status == Status.REQUESTED:
                    services.referral_transition(
                        actor=actor, referral_id=referral.pk, action="accept", assign_to_actor=True
                    )
                    self.stdout.write(f"{referral.reference}: accepted here (decided by IOM's node).")
            elif then == "note" and not referral.notes.filter(author_institution=user.institution).exists():
                services.note_create(actor=actor, referral_id=referral.pk, body=NOTE)
                self.stdout.write(f"{referral.reference}: a note for IOM (delivered by the outbox).")
        self.stdout.write(
            f"IOM's referrals at this node: {', '.join(sorted(r.reference for r in arrived.values()))}."
        )

    def _print_logins(self, code: str):
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in USERS[code]:
            self.stdout.write(f"  {code:4} {role:11} {username}")
