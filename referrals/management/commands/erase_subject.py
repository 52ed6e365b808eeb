"""``manage.py erase_subject <case id or reference> [--yes]``: crypto-shred a person's data.

Destroys the case's data key and blind indexes (see ``referrals.data_rights.subject_erase``); the
referrals' metadata stays for statistics. Irreversible: asks to type the case reference unless ``--yes``.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from referrals.data_rights import CaseNotFound, find_case, subject_erase


class Command(BaseCommand):
    help = "Erase (crypto-shred) the personal data of a case, by id or reference. Irreversible."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("case", help="the case's id (UUID) or reference (e.g. IOM-2026-000123)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument(
            "--operator", default="", help="who runs the erasure (staff username), for the audit"
        )

    def handle(self, *args, case: str, yes: bool, operator: str, **options):
        try:
            found = find_case(case)
        except CaseNotFound as exc:
            raise CommandError(str(exc)) from None
        if found.is_erased and found.wrapped_data_key is None:
            self.stdout.write(f"case {found.reference} is already erased; nothing to do")
            return
        if not yes:
            stdin = options.get("stdin") or sys.stdin
            if not stdin.isatty() and options.get("stdin") is None:
                raise CommandError(
                    "refusing to erase without confirmation: pass --yes (no terminal to ask on)"
                )
            self.stdout.write(
                f"This destroys every personal value of case {found.reference} for good "
                "(referral metadata stays). Type the case reference to confirm: ",
                ending="",
            )
            self.stdout.flush()
            answer = stdin.readline().strip()
            if answer.upper() != found.reference.upper():
                raise CommandError("not confirmed; nothing erased")
        label = f"manage.py erase_subject ({operator})" if operator else "manage.py erase_subject"
        result = subject_erase(case=found, trigger="request", operator=label)
        if result.get("already_erased"):
            self.stdout.write(f"case {found.reference} is already erased; nothing to do")
            return
        self.stdout.write(
            f"erased case {result['reference']}: data key and blind indexes destroyed; "
            f"{result['referrals']} referral(s), {result['consents']} consent(s) and "
            f"{result['notes']} note(s) kept as metadata; "
            f"{result['receivers_revoked']} receiver access(es) revoked"
        )
