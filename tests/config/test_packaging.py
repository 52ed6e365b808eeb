"""The wheel is complete: built from the sources (with the build backend of the lock file, its hash checked),
installed without dependencies into a directory of its own, every app imports from there — not from the
checkout — with its migrations, templates and static files; run from a directory outside the checkout.

Also the packaging rules around it: the Dockerfile installs the lock file with hashes before the project
(copied whole), and pyproject.toml admits no major newer than the one installed and tested."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv" / "bin" / "uv"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "requirements" / "production.txt"


def _packages() -> list[str]:
    """The top-level packages pyproject.toml ships ("config*" → config)."""
    return [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]


def _source_files(package: str) -> set[str]:
    """Every file of a package in the checkout, as the wheel names it (no caches, no compiled files)."""
    files = set()
    for path in (ROOT / package).rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.add(path.relative_to(ROOT).as_posix())
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built by uv from a copy of what the build reads (the checkout itself stays untouched)."""
    if not UV.exists():
        pytest.fail("uv is missing from .venv: run scripts/bootstrap (it is in the dev extra)")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in _packages():
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [str(UV), "build", "--wheel", "--no-config", "--quiet", "--out-dir", str(out)]
        + ["--build-constraints", str(LOCK), "--require-hashes", str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_every_file_of_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in _packages():
        expected = _source_files(package)
        assert expected, package
        assert expected - names == set(), f"missing from the wheel: {sorted(expected - names)[:10]}"
    # The data files the apps render and serve: the checks above would catch their loss, named here.
    for data in (
        "reporting/templates/reporting/statistics.html",
        "reporting/static/reporting/statistics.js",
        "notifications/templates/notifications/email_body.es.txt",
        "referrals/migrations/0001_initial.py",
    ):
        assert data in names


def test_every_app_imports_from_the_installed_wheel_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = """
import json, django
from django.apps import apps
from django.db.migrations.loader import MigrationLoader
django.setup()
local = [a for a in apps.get_app_configs() if a.name.split(".")[0] in PACKAGES]
loader = MigrationLoader(None, ignore_no_migrations=True)
print(json.dumps({
    "apps": {a.label: a.path for a in local},
    "migrations": sorted({app for app, _name in loader.disk_migrations}),
    "settings": __import__("config.settings.base").__file__,
}))
"""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env.update(
        # First on the path: before the dependencies' site-packages and the checkout's editable install.
        PYTHONPATH=str(target),
        # The product settings: the test settings install a test-support app (tests.flush_support).
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "-c", f"PACKAGES = {_packages()!r}\n{probe}"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found["apps"]) >= {"plumbing", "accounts", "audit", "referrals", "matching", "notifications"}
    assert set(found["apps"]) >= {"reporting", "web"}
    for label, path in found["apps"].items():
        assert Path(path).is_relative_to(target), (label, path)
    assert Path(found["settings"]).is_relative_to(target)
    with_migrations = {label for label in found["apps"] if (ROOT / label / "migrations").is_dir()}
    assert with_migrations and with_migrations <= set(found["migrations"])


def test_the_dockerfile_installs_the_lock_with_hashes_then_the_whole_project():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY")]
    lock_install = next(i for i, line in enumerate(lines) if "--require-hashes" in line)
    assert "-r requirements/production.txt" in lines[lock_install]
    copy_all = lines.index("COPY . .")
    installs_project = re.compile(r"pip install --no-deps .*\s\.(\s|$)")
    project_install = next(i for i, line in enumerate(lines) if installs_project.search(line))
    assert lock_install < copy_all < project_install
    # Only the lock is copied before the source tree: no partial package can be installed.
    assert [lines[i] for i in copies if i < copy_all] == [
        "COPY requirements/production.txt ./requirements/production.txt"
    ]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "var/", ".venv/"} <= set(ignored)  # secrets and local state never enter the image


RUNTIME = PYPROJECT["project"]["dependencies"] + PYPROJECT["build-system"]["requires"]


@pytest.mark.parametrize(
    ("lock", "dependencies"),
    [
        ("production.txt", RUNTIME),
        ("dev.txt", RUNTIME + PYPROJECT["project"]["optional-dependencies"]["dev"]),
    ],
)
def test_each_lock_pins_every_dependency_with_hashes(lock, dependencies):
    """A dependency added to pyproject.toml without running scripts/lock fails here (and the locks are
    installed with --no-deps: it would be missing from the image, CI's smoke and .venv)."""
    text = (ROOT / "requirements" / lock).read_text()
    pinned = re.split(r"\n(?=[a-z0-9])", text)[1:]  # one block per package, after the header
    pins = {}
    for block in pinned:
        name, version = re.match(r"([a-z0-9][a-z0-9._-]*)==(\S+) \\", block).groups()
        assert "--hash=sha256:" in block, name
        pins[name] = version
    assert len(pins) > len(dependencies)
    for dependency in dependencies:
        req = Requirement(dependency)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{name} is not in requirements/{lock}: run scripts/lock"
        assert req.specifier.contains(pins[name]), (dependency, pins[name])


def _major(version: Version) -> tuple[int, ...]:
    """The release that may break: the major, or the minor of a 0.x release."""
    return (0, version.minor) if version.major == 0 else (version.major,)


@pytest.mark.parametrize(
    "dependency",
    PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"],
)
def test_no_bound_admits_a_major_that_was_not_tested(dependency):
    req = Requirement(dependency)
    installed = Version(metadata.version(req.name))
    assert req.specifier.contains(installed), f"{req.name} {installed} is outside {req.specifier}"
    uppers = [Version(s.version) for s in req.specifier if s.operator == "<"]
    assert uppers, f"{req.name} has no upper bound"
    next_major = (
        Version(f"0.{installed.minor + 1}") if installed.major == 0 else Version(f"{installed.major + 1}")
    )
    assert min(uppers) <= next_major, f"{req.name}: {req.specifier} admits a release after {installed}"
    lowers = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert lowers and _major(max(lowers)) == _major(installed), f"{req.name}: {req.specifier}"
