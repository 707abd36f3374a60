"""SQLAlchemy engine and migrations, for PostgreSQL and SQLite alike."""

from __future__ import annotations

import logging
import os
import time
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
    kwargs.setdefault("pool_size", 5)
    engine = sa.create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


IDLE_BEFORE_PING = 5.0  # seconds a pooled connection may rest before its next checkout pings it


def _ping_when_idle(engine: Engine, idle: float = IDLE_BEFORE_PING) -> None:
    """Ping a pooled connection at checkout only if it rested ``idle`` seconds or more: one that
    served a moment ago is as alive as a ping could say. ``pool_pre_ping`` pinged every checkout, a
    round trip per transaction on the relay's, the store's and the API's hot paths. A connection
    that breaks while busy (PostgreSQL restarted) fails its statement with ``connection_invalidated``,
    SQLAlchemy then renews the whole pool, and each caller retries as it does for any outage: the
    group commit once in place, the relay, the consumers and the latest-documents follower after a
    pause, the API with a 503 and ``Retry-After``. A dead rested connection is replaced at checkout
    (``DisconnectionError``), the caller never sees it."""

    @event.listens_for(engine, "checkin")
    def _rested(_dbapi_connection, record) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection, record, _proxy) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise sa.exc.DisconnectionError(str(exc).strip()) from exc
            raise


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
