"""``manage.py federation_witness [PEER_URL]``: witness the peers' audit logs now (contract §7.3/§7.4).

For every peer (or the one at PEER_URL): fetch its latest checkpoint over the signed door, verify it with the
peer's pinned audit key and its consistency with the last checkpoint cosigned, cosign it and send the
cosignature. One JSON line per peer (``{"peer", "result", "tree_size", "previous_tree_size", "cause"}``).
Exit 1 when a peer's checkpoint was refused as inconsistent (``federation.checkpoint_conflict``, supervisors
alerted) or could not be witnessed; the hourly job (``federation.tasks.witness_peers``) does the same.
"""

import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from federation import keys, witnessing
from federation.models import Peer


class Command(BaseCommand):
    help = "Cosign the peers' latest audit checkpoints (refusing inconsistent ones)."

    def add_arguments(self, parser):
        parser.add_argument("peer_url", nargs="?", default=None)

    def handle(self, *args, peer_url, **options):
        if not keys.enabled():
            raise CommandError("federation is off (NODE_URL is not set)")
        if peer_url is not None and not Peer.objects.filter(url=peer_url.rstrip("/")).exists():
            raise CommandError("no such peer: pin its card first (federation_peer_add)")
        try:
            outcomes = witnessing.witness_peers(peer_url)
        except (keys.FederationOff, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from None
        for outcome in outcomes:
            self.stdout.write(json.dumps(outcome, sort_keys=True))
        bad = [o for o in outcomes if o["result"] in {"conflict", "failed"}]
        if bad:
            raise CommandError(f"{len(bad)} peer(s) not witnessed", returncode=1)
