"""``manage.py federation_peer_add '<card>' [--replace]``: pin a peer (contract §7.4).

Exit 0: pinned, the same card again, or a changed list of institutions (updated). Exit 1: a card whose
self-signature fails (or that is no card), this node's own card, a known URL with other keys without
``--replace``, an institution code hosted here or by another peer.
"""

from django.core.management.base import BaseCommand, CommandError

from federation import services


class Command(BaseCommand):
    help = "Pin a peer node from its card (the last line of its `federation_card`)."

    def add_arguments(self, parser):
        parser.add_argument("card", help="the peer's card: one line of JSON")
        parser.add_argument(
            "--replace", action="store_true", help="accept other keys for a known URL (the peer rotated them)"
        )

    def handle(self, *args, card, replace, **options):
        try:
            outcome, peer = services.pin_peer(card, replace=replace)
        except services.PeerRefused as exc:
            raise CommandError(str(exc)) from None
        codes = ", ".join(peer.institutions) or "none"
        self.stdout.write(f"{outcome}: {peer.url}  fingerprint {peer.fingerprint}  institutions {codes}")
