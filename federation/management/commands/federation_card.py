"""``manage.py federation_card``: this node's card, as the last line of stdout (contract §7.4)."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from federation import keys, services


class Command(BaseCommand):
    help = "Print this node's self-signed card (give it to peers: `federation_peer_add '<card>'`)."

    def handle(self, *args, **options):
        try:
            card = services.own_card()
        except (keys.FederationOff, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"fingerprint {card.fingerprint}  (compare it with the peer's operator)")
        self.stdout.write(card.line())
