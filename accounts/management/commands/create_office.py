from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actor import system_actor
from accounts.choices import Province
from accounts.models import Institution
from accounts.services import office_save


def _codes(raw: str) -> list[str]:
    return [c.strip() for c in (raw or "").split(",") if c.strip()]


class Command(BaseCommand):
    help = (
        'Create (or update) an office of an institution: create_office INST CODE "NAME" --province PA-5 '
        "--services s1,s2 [--languages es,en]. Idempotent: the same arguments change nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("institution", help="the institution's CODE")
        parser.add_argument("code", help="the office's code: 2–16 characters A–Z, 0–9 or _")
        parser.add_argument("name")
        parser.add_argument(
            "--province", required=True, help="ISO 3166-2:PA code: " + ", ".join(Province.values)
        )
        parser.add_argument("--services", required=True, help="comma-separated service codes (contract §4)")
        parser.add_argument("--languages", default="", help="comma-separated ISO 639 codes, e.g. es,en")

    def handle(self, *args, institution, code, name, province, services, languages, **options):
        inst = Institution.objects.filter(code=institution).first()
        if inst is None:
            raise CommandError(f"no institution with code {institution!r}; create it with create_institution")
        try:
            office, created = office_save(
                institution=inst,
                code=code,
                name=name,
                province=province,
                services=_codes(services),
                languages=_codes(languages),
                actor=system_actor(inst, "manage.py create_office"),
            )
        except ValidationError as exc:
            # The service decides; the command says which arguments were refused.
            raise CommandError(
                "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            ) from None
        except PermissionDenied as exc:  # pragma: no cover - a system actor manages offices
            raise CommandError(str(exc)) from None
        self.stderr.write(f"office {office.key} {'created' if created else 'saved'}")
