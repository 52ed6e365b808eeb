"""Django for a benchmark: the real settings (``bench.settings``: throttling out of the way) over the
database a run names, or a fresh SQLite file in a temporary directory."""

from __future__ import annotations

import os
import tempfile


def create_postgres_database(database_url: str) -> None:
    """Create the benchmark's PostgreSQL database when it does not exist yet (it is flushed anyway)."""
    import psycopg
    from psycopg import sql

    base, _, name = database_url.rpartition("/")
    name = name.split("?")[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created PostgreSQL database {name}")


def setup_django(database_url: str | None, *, prefix: str = "rcm-bench-") -> str:
    """Set Django up over ``database_url`` (created on PostgreSQL when missing; a new SQLite file in a
    temporary directory named ``prefix…`` when none); returns the URL used."""
    if not database_url:
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix=prefix)}/bench.sqlite3"
    elif database_url.startswith(("postgres://", "postgresql://")):
        create_postgres_database(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    return database_url
