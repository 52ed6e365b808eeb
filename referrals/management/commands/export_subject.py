"""``manage.py export_subject <case id or reference>``: everything held on a person, as JSON.

For a data-subject access request. The JSON goes to stdout, or with ``--output FILE`` to a new file
readable by its owner only (0600). This is the one place where personal data is deliberately written
out of the system; it is audited (``subject.exported``, counts only).
"""

from __future__ import annotations

import json
import os

from django.core.management.base import BaseCommand, CommandError

from referrals.crypto import KeyUnavailable
from referrals.data_rights import CaseNotFound, find_case, subject_export


class Command(BaseCommand):
    help = "Export everything held on the person of a case (id or reference) as JSON, for an access request."

    def add_arguments(self, parser):
        parser.add_argument("case", help="the case's id (UUID) or reference (e.g. IOM-2026-000123)")
        parser.add_argument(
            "--output", "-o", help="write to this file (created with mode 0600) instead of stdout"
        )
        parser.add_argument(
            "--operator", default="", help="who runs the export (staff username), for the audit"
        )

    def handle(self, *args, case: str, output: str | None, operator: str, **options):
        try:
            found = find_case(case)
        except CaseNotFound as exc:
            raise CommandError(str(exc)) from None
        label = f"manage.py export_subject ({operator})" if operator else "manage.py export_subject"
        try:
            data = subject_export(case=found, operator=label)
        except KeyUnavailable:
            raise CommandError("the case's data cannot be decrypted with the configured keys") from None
        text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
        if not output:
            self.stdout.write(text, ending="")
            return
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                fd = None
                handle.write(text)
        finally:
            if fd is not None:
                os.close(fd)
        self.stderr.write(f"exported case {found.reference} to {output} (mode 0600)")
