"""SQLAlchemy engine and migrations, for PostgreSQL and SQLite alike."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from shared.times import as_utc, utcnow  # noqa: F401 - where the services have always found them

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def create_engine(url: str, **kwargs) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # it holds every payload: readable by its owner only (WAL files follow)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                  **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    return sa.create_engine(url, **kwargs)


def ping(engine: Engine) -> None:
    """Raise unless the database answers (health checks)."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate_command(url: str) -> int:
    """``wcml migrate``."""
    migrate(url)
    print("database schema is up to date")
    return 0


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (safe to run from several services at once)."""
    from alembic import command

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # One migrator at a time when several services start together.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(726373)"))
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
