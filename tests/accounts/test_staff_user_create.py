"""staff_user_create never moves an existing user to another institution: the service refuses with a
ValidationError, create_staff_user prints a clear error and exits non-zero; nothing about the user changes."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.choices import Role
from accounts.management.commands.create_staff_user import Command
from accounts.models import User
from accounts.services import staff_user_create


@pytest.fixture
def ana(iom):
    return staff_user_create(
        institution=iom, username="ana.cw", role=Role.CASEWORKER, email="ana@example.org", language="es"
    )


def _snapshot(username):
    user = User.objects.get(username=username)
    return (
        user.institution_id,
        user.role,
        user.email,
        user.language,
        user.password,
        sorted(user.groups.values_list("name", flat=True)),
    )


def test_the_service_refuses_to_move_a_user_to_another_institution(ana, dp):
    before = _snapshot("ana.cw")
    with pytest.raises(ValidationError) as caught:
        staff_user_create(institution=dp, username="ana.cw", role=Role.SUPERVISOR, password="Otra-clave-2026")
    assert caught.value.code == "other-institution"
    message = " ".join(caught.value.messages)
    assert "ana.cw" in message and "IOM" in message and "DP" in message
    assert _snapshot("ana.cw") == before  # not moved, role, password and groups untouched


def test_the_service_still_updates_a_user_of_the_same_institution(ana, iom):
    user = staff_user_create(institution=iom, username="ana.cw", role=Role.SUPERVISOR, email="")
    assert (user.institution_id, user.role, user.email) == (iom.pk, Role.SUPERVISOR, "ana@example.org")
    assert sorted(user.groups.values_list("name", flat=True)) == ["IOM:supervisors"]


def test_a_user_without_an_institution_is_not_adopted(iom, django_user_model):
    django_user_model.objects.create_superuser(username="root", password="Raiz-segura-2026")
    with pytest.raises(ValidationError, match="no institution"):
        staff_user_create(institution=iom, username="root", role=Role.ADMIN)
    assert User.objects.get(username="root").institution_id is None


def test_the_command_raises_a_clear_command_error(ana, dp):
    before = _snapshot("ana.cw")
    with pytest.raises(CommandError, match="already exists and belongs to IOM, not DP"):
        call_command("create_staff_user", "DP", "ana.cw", "--role", "caseworker", stderr=io.StringIO())
    assert _snapshot("ana.cw") == before


def test_the_command_prints_the_error_and_exits_non_zero(ana, dp, capsys, monkeypatch):
    """As from a shell (``manage.py create_staff_user …``): the message on stderr, exit status 1."""
    # run_from_argv closes every connection when done; keep the test's transaction open.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "create_staff_user", "DP", "ana.cw", "--role", "caseworker"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "CommandError:" in err and "ana.cw" in err and "never moved" in err
    assert User.objects.get(username="ana.cw").institution.code == "IOM"
