"""``manage.py federation_evidence REFERRAL_ID``: every message about a referral, as signed, in JSON lines.

Each line can be checked by a third party with the card of the node that signed it
(``federation.evidence.verify_line``; docs/federation.md shows how).
"""

import json
import uuid

from django.core.management.base import BaseCommand, CommandError

from federation import services


class Command(BaseCommand):
    help = "Write the messages sent and received about one referral, as signed, as JSON lines."

    def add_arguments(self, parser):
        parser.add_argument("referral_id")

    def handle(self, *args, referral_id, **options):
        try:
            referral_id = str(uuid.UUID(referral_id))
        except ValueError:
            raise CommandError("REFERRAL_ID must be a UUID") from None
        for line in services.evidence(referral_id):
            self.stdout.write(json.dumps(line, sort_keys=True, separators=(",", ":")))
