"""``manage.py audit_checkpoint``: verify what came after the last verified checkpoint, then sign a checkpoint
of the chain's head now (contract §6.3). The last line of stdout is the checkpoint's JSON, as the API serves
it; exit 1 (and no checkpoint) when the chain does not verify."""

import json

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import as_served
from audit.tasks import verify_and_checkpoint


class Command(BaseCommand):
    help = "Signs a checkpoint of the audit chain's head (after verifying it); prints it as JSON."

    def handle(self, **options):
        result, checkpoint = verify_and_checkpoint()
        if checkpoint is None:
            raise CommandError(result.summary(), returncode=1)
        self.stdout.write(result.summary())
        self.stdout.write(json.dumps(as_served(checkpoint), separators=(",", ":")))
