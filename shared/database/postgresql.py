"""The database port on PostgreSQL (the distributed mode).

A batch is bound as one array per column (``unnest``) or one JSON text (``insert_new``), so a statement
over a batch is built and compiled once whatever its size; lookups by key go through ``LATERAL``, one
index lookup per key, which needs no table statistics (this machine's PostgreSQL never analyses).
Appends are serialised by a transaction-scoped advisory lock and announce their commit with
``NOTIFY``; a session-level advisory lock elects one relay.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from shared.database.port import Append, Backend, Batch, Key, Lookup, SessionLock

log = logging.getLogger("shared.notices")

AUTOCOMMIT = "AUTOCOMMIT"
MIGRATION_LOCK = 726373
IDLE_BEFORE_PING = 5.0  # seconds a pooled connection may rest before its next checkout pings it


def unnest(*columns: Key, ordinality: str | None = None):
    """``unnest(:a, :b, …) AS wanted(a, b, …)``: rows from one array parameter per column, so a
    statement over a batch's keys is built and compiled once (a ``VALUES`` list of literals would be
    compiled anew for each batch). ``ordinality``: the name of
    a column numbering the rows from 1, in the arrays' order."""
    arrays_ = (sa.bindparam(name, type_=postgresql.ARRAY(kind)) for name, kind in columns)  # bound as kind[]
    names = [name for name, _ in columns]
    return (sa.func.unnest(*arrays_).table_valued(*names, with_ordinality=ordinality)
            .render_derived(name="wanted"))


def arrays(keys: Sequence[tuple], names: Sequence[str]) -> dict[str, list]:
    """Tuples to one list per name: the parameters of a statement built with ``unnest``."""
    return {name: [key[i] for key in keys] for i, name in enumerate(names)}


class _Append(Append):
    def __init__(self, statement, columns: Sequence[str]):
        self.statement = statement
        self.columns = tuple(columns)

    def ready(self, conn: Connection) -> None:
        """Autocommit: the append is one statement in a transaction of its own, so the server commits
        it, and frees the append lock, before it answers; with ``COMMIT`` sent after, the lock was held
        while this thread waited for the interpreter's lock among the request threads, and the
        workers' appends queued on it."""
        if conn.get_execution_options().get("isolation_level") != AUTOCOMMIT:
            conn.execution_options(isolation_level=AUTOCOMMIT)

    def execute(self, conn: Connection, rows: Sequence[dict], **values: Any) -> sa.CursorResult:
        return conn.execute(self.statement, arrays([tuple(r[n] for n in self.columns) for r in rows],
                                                   self.columns))


class _FromArrays(Batch):
    def __init__(self, statement, names: Sequence[str]):
        self.statement = statement
        self.names = tuple(names)

    def execute(self, conn: Connection, rows: Sequence[tuple], **values: Any) -> sa.CursorResult:
        return conn.execute(self.statement, arrays(rows, self.names))


class _FromJson(Batch):
    def __init__(self, statement):
        self.statement = statement

    def execute(self, conn: Connection, rows: Sequence[dict], **values: Any) -> sa.CursorResult:
        return conn.execute(self.statement, {"rows": orjson.dumps(rows).decode(), **values})


class _ByArrays(Lookup):
    def __init__(self, statement, names: Sequence[str]):
        self.statement = statement
        self.names = tuple(names)

    def rows(self, conn: Connection, keys: Sequence[tuple]) -> list[sa.Row]:
        return list(conn.execute(self.statement, arrays(keys, self.names)))


class _Take:
    def __init__(self, statement):
        self.statement = statement

    @contextmanager
    def __call__(self, engine: Engine, limit: int) -> Iterator[tuple[Connection, list[sa.Row]]]:
        with engine.begin() as conn:  # the rows are deleted only if the caller's work succeeds
            yield conn, list(conn.execute(self.statement, {"limit": limit}))


class _AdvisoryLock(SessionLock):
    """A session-level advisory lock. The lock lives as long as its database session, so the session
    is detached from the engine's pool: closing it ends the session for real. A pooled connection would
    go back to the pool still holding the lock, and the next acquire, handed another pooled
    connection, would be refused by this very process's lock, forever."""

    def __init__(self, engine: Engine, key: int):
        self.engine = engine
        self.key = key
        self.conn = None

    def acquire(self) -> bool:
        if self.conn is not None:
            return True
        conn = self.engine.connect().execution_options(isolation_level=AUTOCOMMIT)
        conn.detach()
        if conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar():
            self.conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self.conn is not None:
            try:  # freed now: a closed session frees it only once its server process has ended
                if not self.conn.invalidated:
                    self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except sa.exc.SQLAlchemyError:
                pass  # a broken session: its end frees the lock
            try:
                self.conn.close()  # a detached session: closing it ends it
            except sa.exc.SQLAlchemyError:
                pass
            self.conn = None


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


class PostgreSQL(Backend):
    name = "postgresql"
    insert = staticmethod(postgresql.insert)

    def create_engine(self, url: str, **kwargs) -> Engine:
        from shared.extras import require_for_url

        parsed = sa.engine.make_url(url)
        if parsed.drivername == "postgresql":  # 2.1 defaults to psycopg 3; the extra has psycopg2
            url = parsed.set(drivername="postgresql+psycopg2")
        require_for_url("WCML_DATABASE_URL", str(url))  # psycopg2 comes with the postgresql extra
        kwargs.setdefault("pool_size", 5)
        engine = sa.create_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _ping_when_idle(engine)
        return engine

    def lock_migrations(self, conn: Connection) -> None:
        # One migrator at a time when several services start together.
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))

    def day(self, column):
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")

    def append(self, table, columns, *, conflict_on, returning, lock, notify) -> Append:
        """A whole append in one statement, compiled once. ``INSERT … SELECT`` from one array per
        column, in the batch's order, joined to a one-row ``SELECT pg_advisory_xact_lock(…),
        pg_notify(…)``: no row, so no position, exists before the lock is held, and the commit tells
        the listeners. It was three statements (the lock, a ``VALUES`` insert SQLAlchemy compiled for
        each batch size, the notice) before the commit, all inside the lock that lets one append at a
        time."""
        wanted = unnest(*((name, table.c[name].type) for name in columns), ordinality="ord")
        hold = sa.select(sa.func.pg_advisory_xact_lock(lock).label("locked"),
                         sa.func.pg_notify(notify, "").label("notified")).subquery("hold")
        rows = (sa.select(*(wanted.c[name] for name in columns)).select_from(hold.join(wanted, sa.true()))
                .order_by(wanted.c.ord))
        statement = (postgresql.insert(table).from_select(list(columns), rows)
                     .on_conflict_do_nothing(index_elements=list(conflict_on))
                     .returning(*(table.c[name] for name in returning)))
        return _Append(statement, columns)

    def insert_many(self, table, columns) -> Batch:
        """From one array per column, one statement compiled once, not a row of parameters each."""
        wanted = unnest(*columns)
        names = [name for name, _ in columns]
        return _FromArrays(sa.insert(table).from_select(names, sa.select(*(wanted.c[n] for n in names))),
                           names)

    def insert_new(self, table, *, conflict_on, returning, given=(), lock=None) -> Batch:
        """``INSERT … SELECT FROM json_populate_recordset(NULL::table, :rows) ON CONFLICT DO NOTHING
        RETURNING``: one statement compiled once, the batch one JSON text (``orjson``), not one array
        per column, whose every value psycopg2 adapts in Python (docs/benchmarks.md). ``lock``: the
        rows are joined to a one-row ``SELECT pg_advisory_xact_lock(lock)``, as ``append`` does, so
        no row, hence no key from the sequence, exists before the lock is held."""
        inserted = [c.name for c in table.columns if not c.primary_key]
        source = sa.func.json_populate_recordset(sa.literal_column(f"NULL::{table.name}"),
                                                 sa.cast(sa.bindparam("rows", type_=sa.Text()), sa.JSON()))
        wanted = source.table_valued(*(name for name in inserted if name not in given)).alias("wanted")
        columns = [sa.bindparam(name, type_=table.c[name].type) if name in given else wanted.c[name]
                   for name in inserted]
        rows = sa.select(*columns)
        if lock is not None:
            hold = sa.select(sa.func.pg_advisory_xact_lock(lock).label("locked")).subquery("hold")
            rows = rows.select_from(hold.join(wanted, sa.true()))
        return _FromJson(postgresql.insert(table).from_select(inserted, rows)
                         .on_conflict_do_nothing(index_elements=list(conflict_on))
                         .returning(*(table.c[name] for name in returning)))

    def rows_of_keys(self, table, keys, order_by) -> Lookup:
        """By one lookup of a unique index per key (``LATERAL``): a tuple ``IN`` list is planned on
        statistics, and on a never-analysed table scans (docs/benchmarks.md)."""
        wanted = unnest(*keys)
        names = [name for name, _ in keys]
        row = sa.select(table).where(*(table.c[n] == wanted.c[n] for n in names)).lateral("row")
        return _ByArrays(sa.select(row).select_from(wanted.join(row, sa.true())).order_by(row.c[order_by]),
                         names)

    def first_per_key(self, table, keys, *, where, order_by) -> Lookup:
        """By one index lookup per key (``LATERAL … ORDER BY … LIMIT 1``), the first entry of an index
        in that order: a window over ``(keys) IN (…)`` was planned on the table's statistics, and
        where they were stale it scanned every row of the repository."""
        wanted = unnest(*keys)
        names = [name for name, _ in keys]
        best = (sa.select(table).where(*(table.c[n] == wanted.c[n] for n in names), where)
                .order_by(*order_by).limit(1).lateral("best"))
        return _ByArrays(sa.select(best).select_from(wanted.join(best, sa.true())), names)

    def take_oldest(self, table, *, order_by, returning):
        """Delete the oldest rows no other taker holds (``FOR UPDATE SKIP LOCKED``), returning them, in
        the transaction of the caller's work: several takers (store replicas) each get their own."""
        key = table.c[order_by]
        oldest = sa.select(key).order_by(key).limit(sa.bindparam("limit")).with_for_update(skip_locked=True)
        return _Take(sa.delete(table).where(key.in_(oldest.scalar_subquery()))
                     .returning(*(table.c[name] for name in returning)))

    def vacuum(self, engine: Engine, table: str) -> None:
        """``VACUUM (SKIP_LOCKED)``: a vacuum of the table already under way is not waited for."""
        with engine.connect().execution_options(isolation_level=AUTOCOMMIT) as conn:
            conn.exec_driver_sql(f"VACUUM (SKIP_LOCKED) {table}")

    def session_lock(self, engine: Engine, key: int) -> SessionLock:
        return _AdvisoryLock(engine, key)

    def notify(self, conn: Connection, channel: str) -> None:
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": channel})

    def listen(self, engine: Engine, channel: str, on_notice: Callable[[], None], stop: threading.Event,
               every: float = 1.0) -> None:
        """``LISTEN`` on a session of its own; a lost connection is replaced (after ``on_notice``, since
        notices may have been missed)."""
        delay = every
        while not stop.is_set():
            conn = None
            try:
                conn = engine.connect().execution_options(isolation_level=AUTOCOMMIT)
                conn.detach()  # a session of its own: closing it ends the LISTEN
                conn.exec_driver_sql(f'LISTEN "{channel}"')
                raw = conn.connection.dbapi_connection
                delay = every
                while not stop.is_set():
                    if select.select([raw], [], [], every) == ([], [], []):
                        continue
                    raw.poll()
                    if raw.notifies:
                        raw.notifies.clear()
                        on_notice()
            except Exception as exc:  # noqa: BLE001 - the driver's own errors too (poll): start over
                log.warning("listening for %s paused: %s", channel, str(exc).splitlines()[0][:200])
                on_notice()
                stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except sa.exc.DBAPIError:
                        pass


POSTGRESQL = PostgreSQL()
