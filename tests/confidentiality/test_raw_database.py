"""The raw database holds no personal value in clear: every column of every table, read behind the ORM.

* SQLite: a subprocess migrates a database *file*, seeds the demo data and writes distinctive personal values
  through the real API and services (``populate.py``); the test then reads every column of every table with
  the ``sqlite3`` module, and the file's bytes themselves (free pages and journals included).
* PostgreSQL (CI's second pass): the same values written in-process, then every text, varchar, bytea and
  json column of every table in the schema read with plain SQL.
Key material must not be in the database either.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from . import populate as values

ROOT = Path(__file__).resolve().parents[2]


def _hits(value) -> list[str]:
    if value is None or isinstance(value, int | float):
        return []
    if isinstance(value, memoryview):
        value = bytes(value)
    blob = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    return values.find_needles(blob)


def _key_forms(keys: list[bytes]) -> list[bytes]:
    forms = []
    for key in keys:
        text = base64.urlsafe_b64encode(key)
        forms += [key, text, text.rstrip(b"="), base64.b64encode(key).rstrip(b"="), key.hex().encode()]
    return forms


def scan_sqlite(path: Path) -> tuple[dict[str, list[str]], dict[str, int]]:
    """``{table.column: [needles]}`` for every hit, and the row count of every table."""
    hits, rows = {}, {}
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
            count = 0
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                count += 1
                for column, value in zip(columns, row, strict=True):
                    found = _hits(value)
                    if found:
                        hits.setdefault(f"{table}.{column}", []).extend(found)
            rows[table] = count
    finally:
        db.close()
    return hits, rows


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory):
    """A database file populated by a separate process, exactly as a deployment would write it."""
    workdir = tmp_path_factory.mktemp("raw-sqlite")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir}/raw.sqlite3",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DJANGO_ENV="development",
        VAR_DIR=str(workdir / "var"),  # its own development keys, generated with a warning
    )
    for name in (
        "FIELD_ENCRYPTION_KEYS",
        "BLIND_INDEX_KEY",
        "AUDIT_HMAC_KEY",
        "AUDIT_SIGNING_KEY",
        "SECRET_KEY",
    ):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.confidentiality.populate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    keys = json.loads((workdir / "var" / "dev-keys.json").read_text())
    return {"path": workdir / "raw.sqlite3", "dir": workdir, "process": done, "keys": keys}


def test_sqlite_file_has_no_personal_value_in_any_column(sqlite_file):
    hits, rows = scan_sqlite(sqlite_file["path"])
    assert hits == {}
    # The scan did read the data: the demo's 11 cases plus ours, their referrals, notes and audit trail.
    assert rows["referrals_subject"] >= 12 and rows["referrals_referral"] >= 14
    assert rows["referrals_note"] >= 2 and rows["referrals_consent"] >= 14 and rows["audit_auditevent"] > 50
    db = sqlite3.connect(sqlite_file["path"])
    try:
        stored = [r[0] for r in db.execute("SELECT given_name FROM referrals_subject")]
        bodies = [r[0] for r in db.execute("SELECT body FROM referrals_note")]
    finally:
        db.close()
    assert all(v.startswith("e1:") for v in stored + bodies)


def test_sqlite_file_bytes_hold_no_personal_value_nor_key(sqlite_file):
    """The file itself (free pages, journals): nothing written in clear and later overwritten either."""
    files = [p for p in sqlite_file["dir"].iterdir() if p.name.startswith("raw.sqlite3")]
    keys = [
        base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))
        for k in sqlite_file["keys"].values()
        if "dev-" not in k
    ]
    for path in files:
        blob = path.read_bytes()
        assert values.find_needles(blob) == [], path.name
        assert not [form for form in _key_forms(keys) if form in blob], path.name
        assert sqlite_file["keys"]["SECRET_KEY"].encode() not in blob


def test_the_populating_process_printed_no_personal_value_nor_key(sqlite_file):
    process = sqlite_file["process"]
    output = process.stdout + process.stderr
    assert values.find_needles(output) == []
    assert not [k for k in sqlite_file["keys"].values() if k.encode() in output]
    assert b"WARNING: generated development keys" in process.stderr  # dev keys: generated with a warning


def test_the_scan_finds_a_value_planted_in_clear(sqlite_file, tmp_path):
    """The scanner itself can fail: a personal value written in clear anywhere is reported."""
    copy = tmp_path / "planted.sqlite3"
    shutil.copy(sqlite_file["path"], copy)
    db = sqlite3.connect(copy)
    db.execute("UPDATE accounts_institution SET name = ? WHERE code = 'DP'", ["Oficina de " + values.OUTCOME])
    db.execute(  # JSON columns escape non-ASCII text: the scanner looks for that form too
        "UPDATE referrals_referral SET services = ? "
        "WHERE rowid = (SELECT min(rowid) FROM referrals_referral)",
        [json.dumps(["Ñandú"])],
    )
    db.commit()
    db.close()
    hits, _ = scan_sqlite(copy)
    assert hits == {"accounts_institution.name": [values.OUTCOME], "referrals_referral.services": ["Ñandú"]}
    assert values.find_needles(b"..QZ77812294..") == ["QZ77812294"]


def scan_postgresql() -> tuple[dict[str, list[str]], dict[str, int]]:
    """``{table.column: [needles]}`` over every text-like column of every table; rows read per table."""
    text_types = ["text", "character varying", "character", "bytea", "json", "jsonb"]
    keys = [
        *settings.FIELD_ENCRYPTION_KEYS,
        settings.BLIND_INDEX_KEY,
        settings.AUDIT_HMAC_KEY,
        settings.AUDIT_SIGNING_KEY,
    ]
    hits, scanned = {}, {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s) ORDER BY table_name, column_name",
            [text_types],
        )
        for table, column, data_type in cursor.fetchall():
            cast = "::text" if data_type in ("json", "jsonb") else ""
            with connection.cursor() as reader:
                reader.execute(f'SELECT "{column}"{cast} FROM "{table}"')  # noqa: S608
                for (value,) in reader.fetchall():
                    scanned[table] = scanned.get(table, 0) + 1
                    found = _hits(value)
                    if value is not None:
                        blob = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                        found += [f"key material ({len(f)} bytes)" for f in _key_forms(keys) if f in blob]
                    if found:
                        hits.setdefault(f"{table}.{column}", []).extend(found)
    return hits, scanned


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgresql_tables_hold_no_personal_value_in_clear():
    values.populate()
    hits, scanned = scan_postgresql()
    assert hits == {}
    assert {"referrals_subject", "referrals_note", "referrals_consent", "audit_auditevent"} <= set(scanned)
    assert scanned["referrals_subject"] >= 1 and scanned["audit_auditevent"] > 20
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM referrals_note")
        assert {row[0][:3] for row in cursor.fetchall()} == {"e1:"}
        # The scan can fail: a value planted in clear is reported.
        cursor.execute("UPDATE accounts_institution SET name = %s WHERE code = 'DP'", [values.WITHDRAWAL])
    assert scan_postgresql()[0] == {"accounts_institution.name": [values.WITHDRAWAL]}
