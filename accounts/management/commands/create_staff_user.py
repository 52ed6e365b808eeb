import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actor import system_actor
from accounts.choices import Role
from accounts.models import Institution, Office
from accounts.services import KEEP_OFFICE, staff_user_create


class Command(BaseCommand):
    help = (
        "Create (or update) a staff user of an institution: create_staff_user CODE USERNAME --role ROLE "
        "[--password-stdin] [--office CODE | --national]. A username of another institution is refused "
        "(never moved)."
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
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--office", default=None, help="the code of the office they work in")
        where.add_argument(
            "--national", action="store_true", help="no office: national staff (working for every office)"
        )

    def handle(
        self, *args, code, username, role, password_stdin, email, language, office, national, **options
    ):
        institution = Institution.objects.filter(code=code).first()
        if institution is None:
            raise CommandError(f"no institution with code {code!r}; create it with create_institution")
        where = KEEP_OFFICE
        if national:
            where = None
        elif office is not None:
            where = Office.objects.filter(institution=institution, code=office).first()
            if where is None:
                raise CommandError(
                    f"no office {office!r} of {institution.code}; create it with create_office"
                )
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
                office=where,
                actor=system_actor(institution, "manage.py create_staff_user"),
            )
        except ValidationError as exc:
            # The service decides (Django's password validators, the username rules, never moved).
            if "password" in getattr(exc, "error_dict", {}):
                raise CommandError("password rejected: " + " ".join(exc.messages)) from None
            raise CommandError(" ".join(exc.messages)) from None
        place = f"office {user.office.code}" if user.office_id else "national"
        self.stderr.write(f"user {user.username} ({user.role}, {place}) of {institution.code} saved")
