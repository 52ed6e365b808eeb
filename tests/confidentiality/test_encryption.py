"""Field encryption: format, binding to model/field/pk, lookups that raise, and keys that are missing or wrong
(a clear error — 503 ``key-unavailable`` on the API — never ciphertext shown as text)."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.db.models import F, Max
from django.test import override_settings

from referrals import crypto
from referrals.crypto import KeyUnavailable
from referrals.fields import EncryptedLookupError, Sealed
from referrals.models import Case, Consent, Note, Referral, Subject

from . import populate as values
from .conftest import API, new_key


def raw(table: str, column: str, pk) -> object:
    """A column as stored, read with SQL (no ORM conversion)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(table)} "  # noqa: S608
            "WHERE id = %s",
            [pk.hex if connection.vendor == "sqlite" else pk],
        )
        return cursor.fetchone()[0]


def write_raw(table: str, column: str, pk, value) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(table)} SET {connection.ops.quote_name(column)} = %s "  # noqa: S608
            "WHERE id = %s",
            [value, pk.hex if connection.vendor == "sqlite" else pk],
        )


def fresh(model, pk):
    """A new instance from the database (no cached plaintext, no cached data key)."""
    crypto.forget_cached_keys()
    return model.objects.get(pk=pk)


# --- format -------------------------------------------------------------------------------------


def test_columns_hold_versioned_ciphertext_and_read_back_as_plaintext(full_case):
    case = full_case["case"]
    subject_pk = Subject.objects.get(case=case).pk
    stored = raw("referrals_subject", "given_name", subject_pk)
    assert stored.startswith("e1:") and "Zebulonia" not in stored
    assert raw("referrals_case", "summary", case.pk).startswith("e1:")
    wrapped = bytes(raw("referrals_case", "wrapped_data_key", case.pk))
    assert wrapped[:2] == b"K1" and len(wrapped) == crypto.WRAPPED_KEY_BYTES
    assert crypto.wrapped_key_id(wrapped) == crypto.kek_id(crypto.active_kek())

    subject = fresh(Subject, subject_pk)
    assert subject.given_name == values.SUBJECT["given_name"]
    assert subject.date_of_birth.isoformat() == values.SUBJECT["date_of_birth"]
    assert subject.languages == ["es", "en"] and subject.is_minor is False
    assert fresh(Case, case.pk).summary == values.SUMMARY


def test_same_value_encrypts_differently_each_time(full_case):
    # A fresh nonce per value: equal plaintexts give unrelated ciphertexts (no equality leak).
    completed, rejected = full_case["completed"], full_case["rejected"]
    assert fresh(Referral, completed.pk).reason == fresh(Referral, rejected.pk).reason == values.REASON
    assert raw("referrals_referral", "reason", completed.pk) != raw(
        "referrals_referral", "reason", rejected.pk
    )


def test_unknown_format_version_is_key_unavailable(full_case):
    case = full_case["case"]
    stored = raw("referrals_case", "summary", case.pk)
    write_raw("referrals_case", "summary", case.pk, "e9:" + stored[3:])
    with pytest.raises(KeyUnavailable):
        _ = fresh(Case, case.pk).summary


def test_plaintext_written_behind_the_orm_is_never_shown(full_case):
    case = full_case["case"]
    write_raw("referrals_case", "summary", case.pk, "plain text slipped into the column")
    with pytest.raises(KeyUnavailable):
        _ = fresh(Case, case.pk).summary


def test_tampered_ciphertext_fails(full_case):
    case = full_case["case"]
    stored = raw("referrals_case", "summary", case.pk)
    flipped = stored[:-3] + ("A" if stored[-3] != "A" else "B") + stored[-2:]
    write_raw("referrals_case", "summary", case.pk, flipped)
    with pytest.raises(KeyUnavailable):
        _ = fresh(Case, case.pk).summary


# --- binding to model, field and primary key ----------------------------------------------------


def test_ciphertext_copied_to_another_column_of_the_same_row_fails(full_case):
    subject_pk = Subject.objects.get(case=full_case["case"]).pk
    write_raw(
        "referrals_subject", "family_name", subject_pk, raw("referrals_subject", "given_name", subject_pk)
    )
    subject = fresh(Subject, subject_pk)
    assert subject.given_name == values.SUBJECT["given_name"]  # the original still reads
    with pytest.raises(KeyUnavailable):
        _ = subject.family_name


def test_ciphertext_copied_to_another_row_of_the_same_case_fails(full_case):
    # Same data key (same case), same column: only the primary key in the associated data differs.
    completed, rejected = full_case["completed"], full_case["rejected"]
    write_raw("referrals_referral", "reason", rejected.pk, raw("referrals_referral", "reason", completed.pk))
    with pytest.raises(KeyUnavailable):
        _ = fresh(Referral, rejected.pk).reason


def test_ciphertext_copied_to_another_model_fails(full_case):
    completed = full_case["completed"]
    note = Note.objects.filter(referral=completed).first()
    write_raw("referrals_note", "body", note.pk, raw("referrals_referral", "reason", completed.pk))
    with pytest.raises(KeyUnavailable):
        _ = fresh(Note, note.pk).body


def test_ciphertext_copied_to_another_case_fails(full_case, iom_actor, make_case):
    other = make_case(iom_actor)
    write_raw("referrals_case", "summary", other.pk, raw("referrals_case", "summary", full_case["case"].pk))
    with pytest.raises(KeyUnavailable):
        _ = fresh(Case, other.pk).summary


def test_wrapped_data_key_copied_to_another_case_fails(full_case, iom_actor, make_case):
    # Even with the other case's data key moved over too, the key is bound to its case id.
    other = make_case(iom_actor)
    source = full_case["case"]
    write_raw(
        "referrals_case",
        "wrapped_data_key",
        other.pk,
        bytes(raw("referrals_case", "wrapped_data_key", source.pk)),
    )
    write_raw("referrals_case", "summary", other.pk, raw("referrals_case", "summary", source.pk))
    with pytest.raises(KeyUnavailable):
        _ = fresh(Case, other.pk).summary


def test_swapped_ciphertext_is_503_key_unavailable_on_the_api(full_case, iom, api_as):
    completed, rejected = full_case["completed"], full_case["rejected"]
    write_raw("referrals_referral", "reason", completed.pk, raw("referrals_referral", "reason", rejected.pk))
    response = api_as(iom).get(f"{API}/referrals/{completed.pk}/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "/problems/key-unavailable" and body["status"] == 503
    assert "e1:" not in response.content.decode() and values.REASON not in response.content.decode()


# --- lookups ------------------------------------------------------------------------------------

LOOKUPS = [
    {"given_name": "Zebulonia Ñandú"},
    {"given_name__exact": "Zebulonia Ñandú"},
    {"given_name__iexact": "zebulonia ñandú"},
    {"given_name__contains": "Zeb"},
    {"given_name__icontains": "zeb"},
    {"given_name__startswith": "Z"},
    {"given_name__istartswith": "z"},
    {"given_name__endswith": "ú"},
    {"given_name__iendswith": "Ú"},
    {"given_name__in": ["Zebulonia Ñandú"]},
    {"given_name__gt": "A"},
    {"given_name__gte": "A"},
    {"given_name__lt": "Z"},
    {"given_name__lte": "Z"},
    {"given_name__range": ("A", "Z")},
    {"given_name__regex": "^Z"},
    {"given_name__iregex": "^z"},
    {"given_name__lower": "zebulonia ñandú"},
    {"given_name__upper__exact": "ZEBULONIA"},
    {"given_name__length": 15},
    {"date_of_birth": "1971-07-13"},
    {"date_of_birth__year": 1971},
    {"is_minor": False},
    {"languages__contains": ["es"]},
    {"document_number": "QZ77812294"},
]


@pytest.mark.parametrize("lookup", LOOKUPS, ids=lambda d: next(iter(d)))
def test_every_lookup_on_an_encrypted_field_raises(full_case, lookup):
    with pytest.raises(EncryptedLookupError):
        list(Subject.objects.filter(**lookup))
    with pytest.raises(EncryptedLookupError):
        list(Subject.objects.exclude(**lookup))


@pytest.mark.parametrize(
    "query",
    [
        lambda: Case.objects.filter(subject__given_name="Zebulonia Ñandú"),
        lambda: Case.objects.filter(summary=values.SUMMARY),
        lambda: Referral.objects.filter(reason__icontains="Motivo"),
        lambda: Note.objects.exclude(body=""),
        lambda: Consent.objects.filter(details__startswith="C"),
        lambda: Case.objects.get(summary=values.SUMMARY),
        lambda: Case.objects.filter(summary=F("reference")),
    ],
    ids=["related", "case", "referral", "note-exclude", "consent", "get", "f-expression"],
)
def test_lookups_raise_through_relations_and_on_every_model(full_case, query):
    with pytest.raises(EncryptedLookupError):
        result = query()
        list(result) if not isinstance(result, Case) else None


@pytest.mark.parametrize(
    "query",
    [
        lambda case: Subject.objects.order_by("family_name"),
        lambda case: Subject.objects.order_by("-date_of_birth"),
        lambda case: Case.objects.order_by("subject__family_name"),
        lambda case: Referral.objects.order_by("reason", "pk"),
        lambda case: Referral.objects.filter(status="requested").order_by("-case__subject__given_name"),
        lambda case: Note.objects.order_by(F("body").desc()),
        lambda case: Case.objects.order_by(F("summary")),
        lambda case: case.referrals.order_by("outcome"),
        lambda case: Consent.objects.latest("details"),
        lambda case: Note.objects.earliest("referral__reason"),
    ],
    ids=[
        "order",
        "order-desc",
        "order-related",
        "order-many",
        "order-two-relations",
        "order-f-desc",
        "order-f",
        "related-manager",
        "latest",
        "earliest-related",
    ],
)
def test_ordering_over_ciphertext_raises(full_case, query):
    """Decided: ciphertext order is random, so ordering by an encrypted field raises rather than
    returning a silently meaningless order (``EncryptedFieldsQuerySet``: every model with encrypted
    fields)."""
    with pytest.raises(EncryptedLookupError, match="cannot order by encrypted field"):
        list(query(full_case["case"]))


def test_ordering_by_plain_fields_and_relations_still_works(full_case):
    case = full_case["case"]
    assert list(Case.objects.order_by("-created_at", "subject__document_number_index")) == [case]
    assert Referral.objects.order_by("case__reference", F("created_at").desc()).count() >= 1
    assert list(Subject.objects.order_by("case")) == [case.subject]  # the case's Meta.ordering
    assert Note.objects.filter(referral__case=case).latest("at").body  # decrypts as usual


def test_the_system_check_refuses_ordering_by_ciphertext_and_unguarded_models():
    """``Meta.ordering``/``get_latest_by`` naming an encrypted field (across relations too), and a model
    with encrypted fields whose queryset would not refuse ``order_by``, are errors of ``manage.py check``."""
    from django.db import models
    from django.test.utils import isolate_apps

    from referrals.checks import check_encrypted_ordering
    from referrals.fields import EncryptedField

    assert check_encrypted_ordering() == []  # the project's own models
    with isolate_apps("referrals"):

        class OrderedByName(models.Model):
            name = EncryptedField()

            class Meta:
                app_label = "referrals"
                ordering = ["-name"]

        class OrderedThroughCase(models.Model):
            case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")

            class Meta:
                app_label = "referrals"
                get_latest_by = "case__summary"

        errors = check_encrypted_ordering(models=[OrderedByName, OrderedThroughCase])
    assert sorted((e.id, e.obj.__name__) for e in errors) == [
        ("referrals.E006", "OrderedByName"),
        ("referrals.E006", "OrderedThroughCase"),
        ("referrals.E007", "OrderedByName"),
    ]


def _ordering_literals():
    """Every string the code (not tests, benchmarks or migrations) passes to ``order_by``, ``latest``,
    ``earliest`` or assigns to an ``ordering``, with its file and line."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    skip = {"tests", "bench", ".venv", "migrations", "node_modules"}
    for path in root.rglob("*.py"):
        if skip & set(path.relative_to(root).parts):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            values = []
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {
                "order_by",
                "latest",
                "earliest",
            }:
                values = node.args
            elif (
                isinstance(node, ast.Assign)
                and any(getattr(t, "id", "") == "ordering" for t in node.targets)
                or isinstance(node, ast.keyword)
                and node.arg == "ordering"
            ):
                values = [node.value]
            for value in values:
                for constant in ast.walk(value):
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        yield f"{path.relative_to(root)}:{constant.lineno}", constant.value


def test_no_ordering_in_the_code_can_reach_an_encrypted_field_from_any_model():
    """The querysets of models without encrypted fields are not guarded: no ordering the code writes may
    reach an encrypted field through a relation, whichever model it starts from. (A name without a relation
    is checked where it is used: an encrypted model's queryset refuses it, and ``Meta.ordering`` is a system
    check.)"""
    from django.apps import apps

    from referrals.fields import encrypted_ordering_field

    literals = list(_ordering_literals())
    assert len(literals) >= 5  # the scan sees the code's orderings ("-created_at", "sequence"…)
    reaching = [
        (where, name, model._meta.label)
        for where, name in literals
        if "__" in name
        for model in apps.get_models()
        if encrypted_ordering_field(model, name) is not None
    ]
    assert reaching == []


def test_bulk_update_with_a_value_raises_and_null_is_allowed(full_case):
    case = full_case["case"]
    for value in ("written in clear", "e1:looks-like-ciphertext"):
        with pytest.raises(EncryptedLookupError), transaction.atomic():
            Case.objects.filter(pk=case.pk).update(summary=value)
    assert raw("referrals_case", "summary", case.pk).startswith("e1:")
    Case.objects.filter(pk=case.pk).update(summary=None)  # erasure writes NULL
    assert raw("referrals_case", "summary", case.pk) is None


def test_isnull_still_works(full_case):
    completed = full_case["completed"]
    assert Referral.objects.filter(pk=completed.pk, outcome__isnull=False).exists()
    assert not Referral.objects.filter(pk=completed.pk, outcome__isnull=True).exists()
    assert Referral.objects.filter(pk=full_case["rejected"].pk, outcome__isnull=True).exists()


def test_values_give_opaque_tokens_never_text(full_case):
    """Decided: ``values()``/``values_list()`` work (Django needs them internally) but yield ``Sealed``
    tokens: ``str()`` shows ``[encrypted]``, and JSON encoders refuse them."""
    case = full_case["case"]
    token = Case.objects.filter(pk=case.pk).values_list("summary", flat=True).get()
    assert isinstance(token, Sealed)
    assert str(token) == "[encrypted]" and "e1:" not in repr(token) and f"{token}" == "[encrypted]"
    with pytest.raises(TypeError):
        json.dumps({"summary": token})
    annotated = Case.objects.annotate(s=F("summary")).get(pk=case.pk)
    assert isinstance(annotated.s, Sealed)
    assert isinstance(Case.objects.aggregate(m=Max("summary"))["m"], Sealed)
    row = Subject.objects.filter(case=case).values("given_name", "document_number_index").get()
    assert isinstance(row["given_name"], Sealed) and row["document_number_index"]
    from rest_framework.utils.encoders import JSONEncoder

    with pytest.raises(TypeError):
        json.dumps(row, cls=JSONEncoder)


def test_deferred_and_select_related_fields_decrypt(full_case):
    case = full_case["case"]
    crypto.forget_cached_keys()
    loaded = Case.objects.only("id", "wrapped_data_key").get(pk=case.pk)
    assert loaded.summary == values.SUMMARY  # deferred: loaded, then decrypted
    note = Note.objects.select_related("referral__case").filter(referral=full_case["completed"]).first()
    assert note.body in (values.NOTE_SENDER, values.NOTE_RECEIVER)


def test_django_serializers_refuse_encrypted_fields(full_case):
    from django.core import serializers

    with pytest.raises(EncryptedLookupError):
        serializers.serialize("json", Case.objects.filter(pk=full_case["case"].pk))


# --- missing or wrong keys ----------------------------------------------------------------------


def test_missing_key_is_key_unavailable_on_read(full_case):
    pk = full_case["case"].pk
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key()]), pytest.raises(KeyUnavailable):
        _ = fresh(Case, pk).summary
    with override_settings(FIELD_ENCRYPTION_KEYS=[]), pytest.raises(KeyUnavailable):
        _ = fresh(Case, pk).summary
    assert fresh(Case, pk).summary == values.SUMMARY  # the configured key still reads it


def test_no_key_configured_refuses_to_write(iom_actor, make_case):
    with override_settings(FIELD_ENCRYPTION_KEYS=[]), pytest.raises(KeyUnavailable):
        make_case(iom_actor)
    assert not Case.objects.exists()


@pytest.mark.parametrize("keys", [[], "other"], ids=["no-key", "other-key"])
def test_api_answers_503_key_unavailable_without_leaking(full_case, iom, dp, api_as, keys):
    sender, receiver = api_as(iom), api_as(dp)
    case, completed = full_case["case"], full_case["completed"]
    paths = [
        (sender, f"{API}/cases/{case.pk}/"),
        (sender, f"{API}/referrals/{completed.pk}/"),
        (receiver, f"{API}/referrals/{completed.pk}/"),
        (sender, f"{API}/referrals/{completed.pk}/notes/"),
        (sender, f"{API}/cases/?document_number=QZ77812294"),
    ]
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key()] if keys == "other" else []):
        crypto.forget_cached_keys()
        for client, path in paths:
            response = client.get(path)
            text = response.content.decode()
            assert response.status_code == 503, (path, response.status_code)
            assert response["Content-Type"].startswith("application/problem+json")
            assert response.json()["type"] == "/problems/key-unavailable"
            assert "e1:" not in text and "Traceback" not in text
            assert not [n for n in values.NEEDLES if n.lower() in text.lower()]
        # Metadata-only lists need no key and keep working.
        assert sender.get(f"{API}/referrals/").status_code == 200
    assert sender.get(f"{API}/cases/{case.pk}/").status_code == 200
