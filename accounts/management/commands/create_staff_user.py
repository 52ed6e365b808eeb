import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actor import system_actor
from accounts.choices import Role
from accounts.models import Institution
from accounts.services import staff_user_create


class Command(BaseCommand):
    help = (
        "Create (or update) a staff user of an institution: create_staff_user CODE USERNAME --role ROLE "
        "[--password-stdin]. A username of another institution is refused (never moved)."
    )

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin's first line"
        )
        parser.add_argument("--email", default="")
        parser.add_argument("--language", default="es", choices=["es", "en"])

    def handle(self, *args, code, username, role, password_stdin, email, language, **options):
        institution = Institution.objects.filter(code=code).first()
        if institution is None:
            raise CommandError(f"no institution with code {code!r}; create it with create_institution")
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("no password on stdin")
        try:
            user = staff_user_create(
                institution=institution,
                username=username,
                role=role,
                password=password,
                email=email,
                language=language,
                actor=system_actor(institution, "manage.py create_staff_user"),
            )
        except ValidationError as exc:
            # The service decides (Django's password validators, the username rules, never moved).
            if "password" in getattr(exc, "error_dict", {}):
                raise CommandError("password rejected: " + " ".join(exc.messages)) from None
            raise CommandError(" ".join(exc.messages)) from None
        self.stderr.write(f"user {user.username} ({user.role}) of {institution.code} saved")
