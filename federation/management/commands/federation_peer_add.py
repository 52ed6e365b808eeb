"""``manage.py federation_peer_add '<card>' [--replace]``: pin a peer (contract §7.4).

Exit 0: pinned, the same card again, or a changed list of institutions (updated). Exit 1: a card whose
self-signature fails (or that is no card), this node's own card, a known URL with other keys without
``--replace``, an institution code hosted here or by another peer.

Once pinned, the peer is asked for its offices (``federation.directory.refresh_offices``), which become the
offices of its remote institutions here. A peer that cannot be reached yet (it is often pinned before it
serves) does not change the exit code: the next witnessing pass (hourly, or ``federation_witness``) fetches
them.
"""

from django.core.management.base import BaseCommand, CommandError

from federation import directory, services


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
        try:
            offices = directory.refresh_offices(peer)
        except directory.OfficesNotRefreshed as exc:
            self.stderr.write(
                f"offices: not fetched now ({exc}); the next witnessing pass (hourly, or federation_witness) "
                "fetches them"
            )
            return
        self.stdout.write(
            "offices: {} new, {} changed, {} no longer served, {} refused".format(
                *(len(offices[k]) for k in ("created", "changed", "withdrawn")), offices["refused"]
            )
        )
