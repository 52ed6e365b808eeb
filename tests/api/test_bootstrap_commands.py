"""The management commands of contract §1: create_institution, create_api_client, create_staff_user,
seed_demo — their effects, their output, and their refusals."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import ApiClient, Institution, User, hash_token
from referrals.choices import Status
from referrals.models import Referral

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,}$")


def _run(*args, stdin=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- create_institution ---------------------------------------------------------------------------


def test_create_institution_is_idempotent(db):
    _run("create_institution", "UNHCR", "ACNUR")
    _run("create_institution", "UNHCR", "ACNUR")
    _run("create_institution", "UNHCR", "Another name")
    assert Institution.objects.filter(code="UNHCR").count() == 1
    assert Institution.objects.get(code="UNHCR").name == "ACNUR"
    assert Group.objects.filter(name__startswith="UNHCR:").count() == 5  # its permission groups


@pytest.mark.parametrize("code", ["X", "unhcr", "TOO_LONG_CODE_1234", "A-B", "Ñ1", "", "AB CD", "DP\x00"])
def test_create_institution_refuses_a_bad_code(db, code):
    with pytest.raises(CommandError):
        _run("create_institution", code, "Name")
    assert not Institution.objects.exists()


@pytest.mark.parametrize("code", ["DP", "IOM", "A1", "UN_WOMEN", "ABCDEFGHIJKLMNOP"])
def test_create_institution_accepts_valid_codes(db, code):
    _run("create_institution", code, "Name")
    assert Institution.objects.filter(code=code).exists()


def test_create_institution_refuses_an_empty_name(db):
    with pytest.raises(CommandError):
        _run("create_institution", "UNHCR", "   ")


# --- create_api_client ----------------------------------------------------------------------------


def test_create_api_client_prints_the_token_last_and_stores_only_its_hash(iom):
    out, err = _run(
        "create_api_client", "IOM", "Partner system", "--scopes", "referrals:read,referrals:write"
    )
    token = out.strip().splitlines()[-1]
    assert TOKEN.match(token), token
    client = ApiClient.objects.get(name="Partner system")
    assert client.institution == iom
    assert sorted(client.scopes) == ["referrals:read", "referrals:write"]
    assert client.token_hash == hash_token(token)
    stored = " ".join(str(getattr(client, f.attname)) for f in ApiClient._meta.concrete_fields)
    assert token not in stored
    assert token not in err  # shown once: only as stdout's last line
    # it works as a bearer token, with exactly its scopes
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/institutions/").status_code == 200
    assert api.get("/api/v1/referrals/").status_code == 200
    assert api.get("/api/v1/audit/events/").status_code in (403, 404)


def test_each_client_gets_a_different_token(iom):
    tokens = {
        _run("create_api_client", "IOM", "same name", "--scopes", "referrals:read")[0]
        .strip()
        .splitlines()[-1]
        for _ in range(3)
    }
    assert len(tokens) == 3


@pytest.mark.parametrize(
    "args",
    [
        ("NOPE", "x", "--scopes", "referrals:read"),
        ("IOM", "x", "--scopes", "referrals:delete"),
        ("IOM", "x", "--scopes", ""),
        ("IOM", "x"),
    ],
)
def test_create_api_client_refusals(iom, args):
    with pytest.raises(CommandError):
        _run("create_api_client", *args)
    assert not ApiClient.objects.exists()


# --- create_staff_user ----------------------------------------------------------------------------


def test_create_staff_user_reads_the_first_line_of_stdin(iom, monkeypatch):
    _run(
        "create_staff_user",
        "IOM",
        "ana.caseworker",
        "--role",
        "caseworker",
        "--password-stdin",
        stdin="Un-secreto-largo-2026\nsecond line ignored\n",
        monkeypatch=monkeypatch,
    )
    user = User.objects.get(username="ana.caseworker")
    assert user.institution == iom and user.role == "caseworker"
    assert user.check_password("Un-secreto-largo-2026")
    assert not user.check_password("Un-secreto-largo-2026\n")
    assert {g.name for g in user.groups.all()} == {"IOM:caseworkers", "IOM:intake"}


@pytest.mark.parametrize("role", ["caseworker", "supervisor", "admin"])
def test_create_staff_user_roles(iom, role):
    _run("create_staff_user", "IOM", f"user.{role}", "--role", role)
    user = User.objects.get(username=f"user.{role}")
    assert user.role == role
    assert not user.has_usable_password()  # no --password-stdin: nobody can log in with a guess


@pytest.mark.parametrize(
    "args",
    [
        ("IOM", "u1", "--role", "superuser"),
        ("IOM", "u1", "--role", "Caseworker"),
        ("IOM", "u1"),
        ("NOPE", "u1", "--role", "caseworker"),
    ],
)
def test_create_staff_user_refusals(iom, args):
    with pytest.raises(CommandError):
        _run("create_staff_user", *args)
    assert not User.objects.filter(username="u1").exists()


@pytest.mark.parametrize("stdin", ["", "\n", "short\n"])
def test_create_staff_user_refuses_an_empty_or_weak_password(iom, stdin, monkeypatch):
    with pytest.raises(CommandError):
        _run(
            "create_staff_user",
            "IOM",
            "u2",
            "--role",
            "caseworker",
            "--password-stdin",
            stdin=stdin,
            monkeypatch=monkeypatch,
        )
    assert not User.objects.filter(username="u2").exists()


# --- seed_demo -----------------------------------------------------------------------------------


def test_seed_demo_fills_every_status_and_prints_the_logins(db):
    out, _err = _run("seed_demo")
    statuses = set(Referral.objects.values_list("status", flat=True))
    assert statuses == set(Status.values)
    assert set(Institution.objects.values_list("code", flat=True)) >= {"IOM", "DP"}
    for username in User.objects.filter(institution__code__in=["IOM", "DP"]).values_list(
        "username", flat=True
    ):
        assert username in out
    # the receiver's access follows the lifecycle in the demo too
    rejected = Referral.objects.get(status=Status.REJECTED)
    assert rejected.receiver_access_revoked_at is not None
    # running it again creates nothing new
    count = Referral.objects.count()
    _run("seed_demo")
    assert Referral.objects.count() == count
