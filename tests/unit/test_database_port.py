"""The database port (``shared/database/``): the only code that knows which database it runs on.

The first test reads the source tree: outside the port's package no module tests a dialect's name or
imports SQLAlchemy's PostgreSQL or SQLite dialects. ``shared/migrations/`` is allowed: Alembic
migrations are frozen history, run as they were written. Declaring a column type or an index per
dialect (``with_variant(…, "sqlite")``, ``postgresql_where=``) is a table's definition, not a branch,
and is not looked for. The others run the port's operations on both databases.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.database import backend_for, backend_of, create_engine
from shared.database.postgresql import POSTGRESQL
from shared.database.sqlite import SQLITE

ROOT = Path(__file__).resolve().parents[2]
PORT = ROOT / "shared" / "database"
ALLOWED = (PORT, ROOT / "shared" / "migrations")
BRANCH = re.compile(
    r"""dialect\.name|get_backend_name|sqlalchemy\.dialects|from\s+sqlalchemy\s+import\s+[^\n]*\bdialects\b"""
    r"""|[!=]=\s*["'](postgresql|sqlite)["']|["'](postgresql|sqlite)["']\s*[!=]=""")


def sources() -> list[Path]:
    return [path for top in ("services", "shared", "bench", "scripts") for path in (ROOT / top).rglob("*.py")
            if not any(path.is_relative_to(allowed) for allowed in ALLOWED)]


def test_no_backend_branch_outside_the_database_port():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in sources()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if BRANCH.search(line)]
    assert not found, "ask shared.database's backend, not the dialect:\n" + "\n".join(found)


def test_the_check_finds_a_branch():
    for line in ('if conn.dialect.name == "postgresql":', "from sqlalchemy.dialects import postgresql",
                 "from sqlalchemy.dialects.sqlite import insert", "if name != 'sqlite':",
                 "make_url(url).get_backend_name()"):
        assert BRANCH.search(line), line


def test_a_backend_is_chosen_by_url_and_by_dialect(tmp_path):
    assert backend_for("postgresql://u@h/db") is POSTGRESQL
    assert backend_for("postgresql+psycopg2://u@h/db") is POSTGRESQL
    assert backend_for(f"sqlite:///{tmp_path}/x.db") is SQLITE
    with pytest.raises(ValueError, match="mysql"):
        backend_for("mysql://u@h/db")
    engine = create_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        assert backend_of(engine) is SQLITE
        with engine.connect() as conn:
            assert backend_of(conn) is SQLITE
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")


metadata = sa.MetaData()
items = sa.Table("port_items", metadata,
                 sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                 sa.Column("k", sa.String(32), nullable=False, unique=True),
                 sa.Column("g", sa.String(32), nullable=False),
                 sa.Column("n", sa.Integer, nullable=False),
                 sa.Column("at", sa.DateTime(timezone=True)),
                 sa.Column("seen", sa.DateTime(timezone=True)))


@pytest.fixture
def table(engine):
    metadata.create_all(engine)
    return engine


def test_insert_ignoring_and_upsert(table):
    backend = backend_of(table)
    with table.begin() as conn:
        conn.execute(backend.insert_ignoring(items, ["k"]),
                     [{"k": "a", "g": "x", "n": 1}, {"k": "b", "g": "x", "n": 2}])
        conn.execute(backend.insert_ignoring(items, ["k"]), [{"k": "a", "g": "y", "n": 9}])
        conn.execute(backend.upsert(items, ["k"], updating=("n",)), [{"k": "b", "g": "z", "n": 5}])
        conn.execute(backend.upsert(items, ["k"], set_={"g": "w"}).values(k="c", g="v", n=3))
        conn.execute(backend.upsert(items, ["k"], set_={"g": "w"}).values(k="c", g="v", n=3))
        found = conn.execute(sa.select(items.c.k, items.c.g, items.c.n).order_by(items.c.k)).all()
    assert found == [("a", "x", 1), ("b", "x", 5), ("c", "w", 3)]


def test_batches_lookups_and_takes(table):
    backend = backend_of(table)
    keys = (("g", sa.String()), ("n", sa.Integer()))
    with table.begin() as conn:
        backend.insert_many(items, (("k", sa.String()), ("g", sa.String()), ("n", sa.Integer()))).execute(
            conn, [("a", "x", 1), ("b", "x", 1), ("c", "y", 2)])
        new = backend.insert_new(items, conflict_on=["k"], returning=("id", "k"), given=("seen",)).execute(
            conn, [{"k": "c", "g": "y", "n": 2, "at": None}, {"k": "d", "g": "y", "n": 2,
                                                               "at": "2024-05-01T10:00:00+00:00"}],
            seen=datetime(2024, 5, 2, tzinfo=UTC)).all()
        assert [row.k for row in new] == ["d"]
        every = backend.rows_of_keys(items, keys, order_by="id").rows(conn, [("x", 1), ("y", 2), ("z", 3)])
        assert [row.k for row in every] == ["a", "b", "c", "d"]
        first = backend.first_per_key(items, keys, where=items.c.k != "a", order_by=(items.c.id.desc(),))
        assert sorted(row.k for row in first.rows(conn, [("x", 1), ("y", 2)])) == ["b", "d"]
        at = conn.execute(sa.select(items.c.at, items.c.seen).where(items.c.k == "d")).one()
    assert [value.replace(tzinfo=value.tzinfo or UTC) for value in at] == [
        datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)]

    take = backend.take_oldest(items, order_by="id", returning=("k",))
    with pytest.raises(RuntimeError), take(table, 2) as (conn, taken):
        assert [row.k for row in taken] == ["a", "b"]
        raise RuntimeError("the work failed: the rows stay")
    with take(table, 3) as (conn, taken):
        assert [row.k for row in taken] == ["a", "b", "c"]
    with table.connect() as conn:
        assert conn.execute(sa.select(items.c.k)).scalars().all() == ["d"]
    backend.vacuum(table, items.name)


def test_the_day_of_a_timestamp_is_its_utc_day(table):
    backend = backend_of(table)
    with table.begin() as conn:
        conn.execute(sa.insert(items), [{"k": "a", "g": "x", "n": 1,
                                         "at": datetime(2024, 5, 1, 23, 30, tzinfo=UTC)}])
        assert conn.execute(sa.select(backend.day(items.c.at))).scalar_one() == "2024-05-01"


def test_a_session_lock_is_held_by_one_session_at_a_time(pg_url):
    first, second = create_engine(pg_url), create_engine(pg_url)
    try:
        one, other = (POSTGRESQL.session_lock(e, 4242) for e in (first, second))
        assert one.acquire() and one.conn is not None
        assert not other.acquire()
        one.release()
        assert other.acquire()
        other.release()
    finally:
        first.dispose()
        second.dispose()
    lock = SQLITE.session_lock(None, 4242)
    assert lock.acquire() and lock.conn is None


def test_sqlite_has_no_notices(sqlite_engine):
    stop = threading.Event()
    SQLITE.listen(sqlite_engine, "channel", lambda: None, stop)  # returns at once
    with sqlite_engine.begin() as conn:
        SQLITE.notify(conn, "channel")
