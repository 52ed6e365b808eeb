"""``manage.py federation_peer_audit_key PEER_URL VKEY``: pin a peer's new audit log key (contract §7.3/§7.4).

For the day a peer really rotates its ``AUDIT_SIGNING_KEY``: until then this node refuses to witness the
peer's log (``federation.checkpoint_conflict``, cause ``key-changed``). The peer's operator reads out the
new key (its ``GET /api/v1/audit/checkpoints/key/`` → ``vkey``); this node's operator compares it by phone
and pins it. The last checkpoint cosigned stays the reference: the next witnessing pass still requires the
peer's log to be consistent with it.

Exit 0: pinned, or the same key again. Exit 1: no peer at that URL, not a log verifier key (name+key id+key,
the key id checked), or a key naming this node's own log.
"""

from django.core.management.base import BaseCommand, CommandError

from federation import witnessing


class Command(BaseCommand):
    help = "Pin a peer's new audit log verifier key, after comparing it with the peer's operator."

    def add_arguments(self, parser):
        parser.add_argument("url", help="the peer's URL, as federation_status lists it")
        parser.add_argument("vkey", help="the peer's new vkey (its GET /api/v1/audit/checkpoints/key/)")

    def handle(self, *args, url, vkey, **options):
        try:
            outcome, peer = witnessing.pin_audit_key(url, vkey)
        except witnessing.AuditKeyRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{outcome}: {peer.url}  audit key {peer.audit_vkey}")
        if outcome == "pinned":
            self.stdout.write(
                "the next witnessing pass (hourly, or federation_witness) checks the peer's log against the "
                "last checkpoint this node cosigned"
            )
