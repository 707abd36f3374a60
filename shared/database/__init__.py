"""SQLAlchemy engines and migrations, and the database port (``port.py``): everything PostgreSQL and
SQLite do differently is done by a ``Backend`` (``postgresql.py``, ``sqlite.py``), chosen from the
URL or the dialect (``backend_of``). Nothing outside this package asks which database it runs on."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from shared.database.port import Backend, once_per_backend
from shared.database.postgresql import IDLE_BEFORE_PING, POSTGRESQL, _ping_when_idle
from shared.database.sqlite import SQLITE
from shared.times import as_utc, utcnow  # noqa: F401 - where the services have always found them

__all__ = ["IDLE_BEFORE_PING", "MIGRATIONS", "Backend", "as_utc", "backend_of", "create_engine",
           "migrate", "migrate_command", "once_per_backend", "ping", "utcnow", "_ping_when_idle"]

MIGRATIONS = Path(__file__).parent.parent / "migrations"
log = logging.getLogger(__name__)

BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (POSTGRESQL, SQLITE)}


def backend_of(bind: Engine | Connection) -> Backend:
    """The backend of an engine's or a connection's database."""
    return BACKENDS[bind.dialect.name]


def backend_for(url: str) -> Backend:
    """The backend a database URL names."""
    name = make_url(url).get_backend_name()
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"no database backend for {name!r} (PostgreSQL or SQLite)") from None


def create_engine(url: str, **kwargs) -> Engine:
    return backend_for(url).create_engine(url, **kwargs)


def ping(engine: Engine) -> None:
    """Raise unless the database answers (health checks)."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


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
            backend_of(connection).lock_migrations(connection)  # one migrator at a time
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
