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
        institution, created = institution_create(code=code, name=name.strip())
        self.stderr.write(f"institution {institution.code} {'created' if created else 'already exists'}")
