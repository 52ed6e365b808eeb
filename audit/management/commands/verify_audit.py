"""``manage.py verify_audit``: re-compute the audit hash chain (contract §1).

Exit 0 and a summary when intact; exit 1 and the id/sequence of the first bad event otherwise.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.verification import verify_chain


class Command(BaseCommand):
    help = "Re-computes the audit hash chain; exit 1 names the first bad event."

    def handle(self, **options):
        result = verify_chain()
        self.stdout.write(result.summary())  # on stdout in both cases, for scripts that read one stream
        if not result.ok:
            raise CommandError(result.summary(), returncode=1)
