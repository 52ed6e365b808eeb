"""``manage.py check_data``: list the stored records that break today's input rules (contract §7.5).

One line per finding, ``<kind> <reference> <field>`` (e.g. ``case IOM-2026-000012 subject.nationality``):
references and field names only, never a value. Progress goes to stderr. Exit status 0 when nothing is
found, 1 otherwise (for a monitoring job). The records are fixed through the usual doors (the web forms,
the API), which now refuse the same values.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from referrals.data_check import Progress, stored_findings


class Command(BaseCommand):
    help = "List stored records that break today's input rules (by reference and field; never values)."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="no progress output")

    def handle(self, *args, quiet: bool = False, **options):
        unreadable = {}

        def progress(step: Progress) -> None:
            unreadable[step.kind] = step.unreadable
            if not quiet:
                self.stderr.write(f"checked {step.checked}/{step.total} {step.kind}")

        found = 0
        for finding in stored_findings(progress):
            found += 1
            self.stdout.write(f"{finding.kind} {finding.reference} {finding.field}")
        skipped = sum(unreadable.values())
        if skipped:
            self.stderr.write(f"{skipped} records could not be read (data key unavailable): not checked")
        if found:
            raise CommandError(f"{found} fields of stored records break today's rules", returncode=1)
        self.stdout.write("no stored record breaks today's rules")
