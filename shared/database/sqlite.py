"""The database port on SQLite (the embedded mode: one process, one file).

SQLite lets one writer at a time hold the file, so appends need no lock of their own and one process
needs no election; it has no notices (the embedded mode wakes writer and follower directly). A batch
is one cached statement run with ``executemany`` (SQLAlchemy batches it into multi-row ``VALUES``);
lookups by key are a tuple ``IN`` list.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine, make_url

from shared.database.port import Append, Backend, Batch, Lookup, SessionLock
from shared.times import parse_time


def _pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class _Append(Append):
    def __init__(self, statement):
        self.statement = statement

    def execute(self, conn: Connection, rows: Sequence[dict], **values: Any) -> sa.CursorResult:
        return conn.execute(self.statement, rows)


class _Many(Batch):
    def __init__(self, statement, names: Sequence[str]):
        self.statement = statement
        self.names = tuple(names)

    def execute(self, conn: Connection, rows: Sequence[tuple], **values: Any) -> sa.CursorResult:
        return conn.execute(self.statement, [dict(zip(self.names, row, strict=True)) for row in rows])


class _New(Batch):
    def __init__(self, statement, times: Sequence[str]):
        self.statement = statement
        self.times = tuple(times)

    def execute(self, conn: Connection, rows: Sequence[dict], **values: Any) -> sa.CursorResult:
        return conn.execute(self.statement, [
            {**row, **{name: parse_time(row[name]) for name in self.times if row[name] is not None},
             **values} for row in rows])


class _InList(Lookup):
    statement = None  # built for each list of keys

    def __init__(self, build: Callable[[Sequence[tuple]], sa.Select]):
        self.build = build

    def rows(self, conn: Connection, keys: Sequence[tuple]) -> list[sa.Row]:
        return list(conn.execute(self.build(keys)))


class _Take:
    """Read, let the caller work, then delete in a transaction of its own: the taker never holds the
    file's one write lock while it works (writes files)."""

    def __init__(self, table: sa.Table, key: str):
        self.table = table
        self.key = key

    @contextmanager
    def __call__(self, engine: Engine, limit: int) -> Iterator[tuple[Connection, list[sa.Row]]]:
        key = self.table.c[self.key]
        with engine.connect() as conn:
            taken = list(conn.execute(sa.select(self.table).order_by(key).limit(limit)))
            yield conn, taken
        if taken:
            with engine.begin() as conn:
                conn.execute(sa.delete(self.table).where(key.in_([row._mapping[self.key] for row in taken])))


class _OneProcess(SessionLock):
    """One process uses the file: it holds every lock, and needs no session for it."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


class SQLite(Backend):
    name = "sqlite"
    insert = staticmethod(sqlite.insert)

    def create_engine(self, url: str, **kwargs) -> Engine:
        parsed = make_url(url)
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # it holds every payload: readable by its owner only (WAL files follow)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _pragmas)
        return engine

    def lock_migrations(self, conn: Connection) -> None:
        pass  # the migration's transaction holds the file's write lock

    def day(self, column):
        return sa.func.strftime("%Y-%m-%d", column)  # stored as UTC text

    def append(self, table, columns, *, conflict_on, returning, lock, notify) -> Append:
        """One cached statement, executemany: SQLAlchemy batches it into multi-row ``VALUES``."""
        return _Append(sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict_on))
                       .returning(*(table.c[name] for name in returning)))

    def insert_many(self, table, columns) -> Batch:
        return _Many(sa.insert(table), [name for name, _ in columns])

    def insert_new(self, table, *, conflict_on, returning, given=(), lock=None) -> Batch:
        """``lock`` is the file's: one writer at a time, from its first write to its commit."""
        times = [c.name for c in table.columns if isinstance(c.type, sa.DateTime)
                 and not c.primary_key and c.name not in given]
        return _New(sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict_on))
                    .returning(*(table.c[name] for name in returning)), times)

    def rows_of_keys(self, table, keys, order_by) -> Lookup:
        identity = sa.tuple_(*(table.c[name] for name, _ in keys))
        order = table.c[order_by]
        return _InList(lambda wanted: sa.select(table).where(identity.in_(wanted)).order_by(order))

    def first_per_key(self, table, keys, *, where, order_by) -> Lookup:
        columns = tuple(table.c[name] for name, _ in keys)
        rank = sa.func.row_number().over(partition_by=columns, order_by=tuple(order_by)).label("rank")
        identity = sa.tuple_(*columns)

        def build(wanted: Sequence[tuple]) -> sa.Select:
            ranked = sa.select(table, rank).where(identity.in_(wanted), where).subquery()
            return sa.select(*(ranked.c[c.name] for c in table.columns)).where(ranked.c.rank == 1)

        return _InList(build)

    def take_oldest(self, table, *, order_by, returning):
        return _Take(table, order_by)

    def vacuum(self, engine: Engine, table: str) -> None:
        pass  # SQLite reuses a deleted row's space; its VACUUM would rewrite the whole file

    def session_lock(self, engine: Engine, key: int) -> SessionLock:
        return _OneProcess()

    def notify(self, conn: Connection, channel: str) -> None:
        pass  # no notices: the embedded mode wakes its followers directly

    def listen(self, engine: Engine, channel: str, on_notice: Callable[[], None], stop: threading.Event,
               every: float = 1.0) -> None:
        return


SQLITE = SQLite()
