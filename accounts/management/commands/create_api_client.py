from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.actor import system_actor
from accounts.models import Institution
from accounts.services import api_client_create, parse_scopes


class Command(BaseCommand):
    help = "Create an API client of an institution; the last line of stdout is its bearer token, shown once."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("name")
        parser.add_argument(
            "--scopes", required=True, help="comma-separated, e.g. referrals:read,referrals:write"
        )
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args, code, name, scopes, expires_in_days, **options):
        institution = Institution.objects.filter(code=code).first()
        if institution is None:
            raise CommandError(f"no institution with code {code!r}; create it with create_institution")
        try:
            scope_list = parse_scopes(scopes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not scope_list:
            raise CommandError("give at least one scope")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            client, token = api_client_create(
                institution=institution,
                name=name,
                scopes=scope_list,
                expires_at=expires_at,
                actor=system_actor(institution, "manage.py create_api_client"),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stderr.write(
            f"api client {client.pk} of {institution.code} with scopes {','.join(client.scopes)}"
        )
        self.stdout.write(token)
