"""A lint where import-linter cannot see: a door never decides by role, it asks the core's policy.

Doors are the web (``web/``), the partner API (``*/api.py``, ``*/api/``), the Django admin (``*/admin.py``),
management commands and the statistics pages (``reporting/views.py``). In them, comparing a role
(``x.role == …``, ``x.role in …``, ``… == Role.SUPERVISOR``) or asking ``is_supervisor`` is a decision
taken outside ``referrals.policy`` — refused here, with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "audit", "matching", "notifications", "plumbing", "referrals", "reporting", "web")

#: Role checks still made by a door, each waiting for the policy that will own it — ``(path, function)``.
#: Account management is the ``accounts`` app's own policy (issue 19, accounts part): when
#: ``accounts/policy.py`` answers who manages staff, these go, and so must their lines here (the test
#: below fails on an entry that no longer matches anything).
PENDING: dict[tuple[str, str], str] = {}


def door_modules() -> list[Path]:
    found = set()
    for app in APPS:
        base = ROOT / app
        if app == "web":
            found.update(base.rglob("*.py"))
        found.update(base.glob("api.py"))
        found.update((base / "api").rglob("*.py"))
        found.update(base.glob("admin.py"))
        found.update((base / "management" / "commands").rglob("*.py"))
    found.add(ROOT / "reporting" / "views.py")
    return sorted(p for p in found if p.is_file() and "migrations" not in p.parts)


def _is_role(node: ast.AST) -> bool:
    """``something.role`` or ``Role.SOMETHING``."""
    if isinstance(node, ast.Attribute):
        if node.attr == "role":
            return True
        return isinstance(node.value, ast.Name) and node.value.id == "Role"
    return False


def _contains_role(node: ast.AST) -> bool:
    return any(_is_role(n) for n in ast.walk(node))


class _Finder(ast.NodeVisitor):
    def __init__(self):
        self.found: list[tuple[int, str, str]] = []  # (line, enclosing function, what)
        self._function: list[str] = []

    def _visit_function(self, node):
        self._function.append(node.name)
        self.generic_visit(node)
        self._function.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _visit_function

    def _where(self) -> str:
        return self._function[-1] if self._function else "<module>"

    def visit_Compare(self, node: ast.Compare):
        if any(_contains_role(operand) for operand in (node.left, *node.comparators)):
            self.found.append((node.lineno, self._where(), "compares a role"))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute):
        if node.attr == "is_supervisor":
            self.found.append((node.lineno, self._where(), "asks is_supervisor"))
        self.generic_visit(node)


def role_decisions(path: Path) -> list[tuple[int, str, str]]:
    finder = _Finder()
    finder.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return finder.found


def test_the_lint_sees_what_it_refuses(tmp_path):
    sample = tmp_path / "door.py"
    sample.write_text(
        "def a(actor):\n    return actor.role == 'admin'\n"
        "def b(user):\n    return user.role in (Role.CASEWORKER,)\n"
        "def c(actor):\n    return actor.is_supervisor\n"
        "def d(x):\n    return x == Role.ADMIN\n"
        "def fine(actor):\n    return policy.may_refer(actor) and User(role=Role.ADMIN)\n"
    )
    assert [(where, what) for _line, where, what in role_decisions(sample)] == [
        ("a", "compares a role"),
        ("b", "compares a role"),
        ("c", "asks is_supervisor"),
        ("d", "compares a role"),
    ]


def test_the_doors_are_found():
    names = {str(p.relative_to(ROOT)) for p in door_modules()}
    assert {"web/access.py", "referrals/api/views.py", "matching/api.py", "accounts/admin.py"} <= names
    assert "reporting/views.py" in names
    assert any(name.startswith("accounts/management/commands/") for name in names)


def test_no_door_decides_by_role():
    refused, pending_seen = [], set()
    for path in door_modules():
        relative = str(path.relative_to(ROOT))
        for line, where, what in role_decisions(path):
            if (relative, where) in PENDING:
                pending_seen.add((relative, where))
            else:
                refused.append(f"{relative}:{line} ({where}) {what}: ask referrals.policy instead")
    assert refused == []
    assert pending_seen == set(PENDING), "a pending role check is gone: remove its line from PENDING"
