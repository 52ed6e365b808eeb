"""``manage.py federation_ping PEER_URL [--echo TEXT] [--sealed] [--outbox]``: a signed round trip to a peer.

Exit 0 and the peer's verified answer; exit 1 when the peer is unknown, unreachable, refuses the message or
answers with a signature that does not verify. With ``--outbox`` the ping is put in the outbox instead and
the command prints its message id at once: the delivery (worker or embedded relay) posts it, retrying while
the peer is down, and ``federation_status`` shows it waiting until then.
"""

import json
import uuid

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from federation import keys, services
from federation.models import Peer


class Command(BaseCommand):
    help = "Send a signed ping to a peer and verify its signed answer."

    def add_arguments(self, parser):
        parser.add_argument("peer_url")
        parser.add_argument("--echo", default="", help="a text the peer sends back (at most 200 characters)")
        parser.add_argument("--sealed", action="store_true", help="encrypt the ping (and its answer)")
        parser.add_argument("--referral", default=None, help="file the exchange under this referral id")
        parser.add_argument(
            "--outbox", action="store_true", help="queue the ping in the outbox (delivered by the relay)"
        )

    def handle(self, *args, peer_url, echo, sealed, referral, outbox, **options):
        if referral is not None:
            try:
                referral = str(uuid.UUID(referral))
            except ValueError:
                raise CommandError("--referral must be a UUID") from None
        peer = Peer.objects.filter(url=peer_url.rstrip("/")).first()
        if peer is None:
            raise CommandError("no such peer: pin its card first (federation_peer_add)")
        if outbox:
            try:
                with transaction.atomic():
                    row = services.enqueue(peer, "ping", {"echo": echo}, sealed=sealed, referral_id=referral)
            except (keys.FederationOff, ImproperlyConfigured) as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(json.dumps({"queued": True, "message_id": str(row.message_id)}))
            return
        try:
            reply = services.send(peer, "ping", {"echo": echo}, sealed=sealed, referral_id=referral)
        except (keys.FederationOff, ImproperlyConfigured, services.PeerUnavailable) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            json.dumps(
                {
                    "status": reply.status,
                    "message_id": reply.message_id,
                    "sealed": reply.sealed,
                    **reply.payload,
                },
                sort_keys=True,
            )
        )
        if reply.status != 200:
            raise CommandError(f"the peer answered {reply.status}")
