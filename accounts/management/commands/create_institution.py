from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import institution_code_validator
from accounts.services import institution_create


class Command(BaseCommand):
    help = 'Create an institution (idempotent): create_institution CODE "NAME"'

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("name")

    def handle(self, *args, code, name, **options):
        try:
            institution_code_validator(code)
        except ValidationError:
            raise CommandError("CODE must be 2–16 characters of A–Z, 0–9 or _") from None
        if not name.strip() or len(name) > 200:
            raise CommandError("NAME must be 1–200 characters")
        try:
            institution, created = institution_create(code=code, name=name.strip())
        except ValidationError as exc:  # a remote institution's code: the service says whose node hosts it
            raise CommandError(" ".join(exc.messages)) from None
        self.stderr.write(f"institution {institution.code} {'created' if created else 'already exists'}")
