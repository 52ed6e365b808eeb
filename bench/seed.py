"""Fast bulk seeding: cases, subjects, referrals and consents, encrypted exactly as the services do,
with the guardian permission rows the selectors filter on — bulk_create, not HTTP."""

from __future__ import annotations

import datetime
import random
from datetime import timedelta

from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.utils import timezone

from accounts.choices import Province, Role, Scope
from accounts.models import Institution, Office
from accounts.services import api_client_create, institution_create, office_save, staff_user_create
from referrals import crypto
from referrals.choices import Status
from referrals.models import (
    Case,
    CaseGroupObjectPermission,
    Consent,
    ReferenceCounter,
    Referral,
    ReferralGroupObjectPermission,
    Subject,
)
from referrals.permissions import CASE_GROUP_KINDS, CASE_PERMS, RECEIVER_GROUP_KINDS, RECEIVER_PERMS

CODES = ["IOM", "DP", "UNHCR", "UNICEF", "SNM"]
ALL_SCOPES = [s.value for s in Scope]
BATCH = 2000
GIVEN = ["María", "José", "Ana", "Luis", "Carmen", "Jorge", "Rosa", "Pedro", "Elena", "Juan"]
FAMILY = ["Pérez", "Rondón", "García", "Martínez", "Rodríguez", "Hernández", "López", "González"]


def institutions_and_tokens() -> tuple[list[Institution], dict[str, str]]:
    """The five institutions, each with an API client holding every scope (token by code)."""
    institutions, tokens = [], {}
    for code in CODES:
        institution, _ = institution_create(code=code, name=f"Institution {code}")
        institutions.append(institution)
        _client, tokens[code] = api_client_create(institution=institution, name="bench", scopes=ALL_SCOPES)
    return institutions, tokens


def offices_and_staff(institutions: list[Institution], count: int) -> dict[int, list[Office]]:
    """``count`` offices spread over the institutions (through ``office_save``, with their groups), each
    in a province of its own within its institution and offering the services the seeded referrals ask
    for, and a caseworker and a supervisor in each (``staff_user_create(office=…)``): ``{institution pk:
    [office, …]}``. The first institution's offices come first in the spread."""
    provinces = list(Province.values)
    offices: dict[int, list[Office]] = {i.pk: [] for i in institutions}
    for n in range(count):
        institution = institutions[n % len(institutions)]
        mine = offices[institution.pk]
        code = f"OF{len(mine) + 1:02d}"
        office, _created = office_save(
            institution=institution,
            code=code,
            name=f"{institution.code} office {len(mine) + 1}",
            province=provinces[len(mine) % len(provinces)],
            services=["legal_assistance", "protection", "health"],
            languages=["es"],
        )
        mine.append(office)
        for role in (Role.CASEWORKER, Role.SUPERVISOR):
            staff_user_create(
                institution=institution,
                username=f"bench.{institution.code.lower()}.{code.lower()}.{role}",
                role=role,
                office=office,
            )
    return offices


def _perm_ids(model, codenames) -> dict[str, int]:
    return dict(
        Permission.objects.filter(content_type__app_label="referrals", codename__in=codenames)
        .filter(content_type__model=model)
        .values_list("codename", "id")
    )


def _raw_bulk_insert(model, objects) -> None:
    """What bulk_create does (each field's pre_save — encryption — and db prep), minus the ORM's per-row
    compiler overhead: one executemany per model."""
    fields = [f for f in model._meta.local_concrete_fields]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    rows = [[f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields] for obj in objects]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _perm_insert_sql(model) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("group_id", "permission_id", "content_object_id"))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES (%s, %s, %s)"  # noqa: S608


def seed(
    institutions: list[Institution],
    count: int,
    *,
    offset: int = 0,
    seed_value: int = 7,
    offices: dict[int, list[Office]] | None = None,
) -> None:
    """``count`` cases with a subject and one referral each, spread over the institutions.

    ``offices`` (from ``offices_and_staff``): of a receiver's referrals, one in ``len + 1`` stays at its
    national intake and the others are spread over its offices (with the office's province, and the office
    group's grants as ``grant_receiver`` gives them); the sender's office is one of the sender's offices
    the same way."""
    offices = offices or {}
    rng = random.Random(seed_value + offset)
    year = timezone.now().year
    case_perm = _perm_ids("case", CASE_PERMS)
    referral_perm = _perm_ids("referral", RECEIVER_PERMS)
    case_groups = {i.pk: [i.group(k).pk for k in CASE_GROUP_KINDS] for i in institutions}
    receiver_groups = {i.pk: [i.group(k).pk for k in RECEIVER_GROUP_KINDS] for i in institutions}
    office_groups = {o.pk: o.group().pk for mine in offices.values() for o in mine}
    n_inst = len(institutions)
    uuid_field = Case._meta.pk

    def uuid_db(value):
        return uuid_field.get_db_prep_value(value, connection)

    case_perm_sql = _perm_insert_sql(CaseGroupObjectPermission)
    ref_perm_sql = _perm_insert_sql(ReferralGroupObjectPermission)
    start = timezone.now() - timedelta(days=365)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA synchronous=OFF")
    for batch_start in range(offset, offset + count, BATCH):
        batch_end = min(batch_start + BATCH, offset + count)
        cases, subjects, referrals, consents, case_perms, ref_perms = [], [], [], [], [], []
        for n in range(batch_start, batch_end):
            owner = institutions[n % n_inst]
            receiver = institutions[(n + 1 + n // n_inst % (n_inst - 1)) % n_inst]
            if receiver.pk == owner.pk:
                receiver = institutions[(n + 1) % n_inst]
            at = start + timedelta(seconds=n * 3)
            seq = n // n_inst + 1
            case = Case(
                institution=owner,
                reference=f"{owner.code}-{year}-{seq:06d}",
                summary="Resumen del caso",
                created_at=at,
                updated_at=at,
            )
            case.data_key()  # sets wrapped_data_key before the INSERT (Case.save() would do it)
            cases.append(case)
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            dob = datetime.date(1960 + n % 50, 1 + n % 12, 1 + n % 28)
            document = f"P{n:09d}"
            subject = Subject(
                case=case,
                given_name=given,
                family_name=family,
                date_of_birth=dob,
                sex="female" if n % 2 else "male",
                nationality="VEN",
                languages=["es"],
                document_type="passport",
                document_number=document,
                phone=f"+507 6{n % 1000:03d}-{n % 10000:04d}",
                email=f"persona{n}@example.org",
                current_location="Lajas Blancas",
                protection_needs="Necesidades de protección",
                is_minor=n % 7 == 0,
                document_number_index=crypto.blind_index("document_number", document),
            )
            subjects.append(subject)
            to_offices, from_offices = offices.get(receiver.pk, []), offices.get(owner.pk, [])
            slot = n % (len(to_offices) + 1)  # 0: the national intake
            to_office = to_offices[slot - 1] if slot else None
            from_office = from_offices[(n // 3) % len(from_offices)] if from_offices and n % 3 else None
            draft = n % 10 == 0
            status = Status.DRAFT if draft else (Status.ACCEPTED if n % 10 == 1 else Status.REQUESTED)
            referral = Referral(
                reference=f"{owner.code}-R-{year}-{seq:06d}",
                case=case,
                from_institution=owner,
                to_institution=receiver,
                services=["legal_assistance", "protection"],
                to_office=to_office,
                from_office=from_office,
                province=to_office.province if to_office else "",
                urgency="normal",
                reason="Motivo de la remisión",
                status=status,
                sent_at=None if draft else at,
                response_due_at=None if draft else at + timedelta(days=14),
                answered_at=at if status == Status.ACCEPTED else None,
                version=1 if draft else (2 if status == Status.REQUESTED else 3),
                created_at=at,
                updated_at=at,
            )
            referrals.append(referral)
            consents.append(
                Consent(
                    referral=referral,
                    recipient=receiver,
                    given=True,
                    given_by="self",
                    method="verbal",
                    obtained_at=at,
                    data_categories=["contact", "identity"],
                    details="",
                    recorded_at=at,
                )
            )
            case_key = uuid_db(case.pk)
            for group_id in case_groups[owner.pk]:
                for codename in CASE_PERMS:
                    case_perms.append((group_id, case_perm[codename], case_key))
            if not draft:
                referral_key = uuid_db(referral.pk)
                holders = receiver_groups[receiver.pk] + ([office_groups[to_office.pk]] if to_office else [])
                for group_id in holders:
                    for codename in RECEIVER_PERMS:
                        ref_perms.append((group_id, referral_perm[codename], referral_key))
        with transaction.atomic():
            for model, objects in (
                (Case, cases),
                (Subject, subjects),
                (Referral, referrals),
                (Consent, consents),
            ):
                _raw_bulk_insert(model, objects)
            # Permission rows are the bulk (15 per case): plain executemany, no model instances.
            with connection.cursor() as cursor:
                cursor.executemany(case_perm_sql, case_perms)
                cursor.executemany(ref_perm_sql, ref_perms)
    total = offset + count
    for index, institution in enumerate(institutions):
        mine = (total - index + n_inst - 1) // n_inst
        for kind in ("case", "ref"):
            ReferenceCounter.objects.update_or_create(
                institution=institution, kind=kind, year=year, defaults={"value": mine}
            )
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("ANALYZE")
        else:
            cursor.execute("ANALYZE")
