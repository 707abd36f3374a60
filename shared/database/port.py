"""The database port: what the services ask of a database that PostgreSQL and SQLite do differently.

One ``Backend`` per database (``postgresql.py``, ``sqlite.py``), chosen from an engine's or a
connection's dialect (``backend_of``). Nothing outside this package tests a dialect's name or imports
``sqlalchemy.dialects`` (``tests/unit/test_database_port.py``): a service states what it wants done
(an insert that ignores known rows, the rows of these keys, the oldest rows taken...) with its own
tables, and each backend does it its way. A statement a caller runs often is built once per backend
(``once_per_backend``), so SQLAlchemy finds its compiled form by the statement's cache key.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

Bind = Engine | Connection
Key = tuple[str, sa.types.TypeEngine]  # a column of a batch's keys: its name and its type


class Batch(ABC):
    """A statement over a whole batch of rows, executed once for the batch."""

    statement: sa.Executable

    @abstractmethod
    def execute(self, conn: Connection, rows: Sequence, **values: Any) -> sa.CursorResult: ...


class Append(Batch):
    """Rows appended in the batch's order (``execute``: rows as dicts), one at a time across writers;
    a row whose conflict key is known is left out; the new rows' ``returning`` columns come back."""

    def ready(self, conn: Connection) -> None:
        """Make ``conn`` fit to append on, before its transaction begins (the default: as it is)."""


class Lookup(ABC):
    """Rows of a table found by a batch of keys (tuples, in the order of the key columns)."""

    statement: sa.Executable | None

    @abstractmethod
    def rows(self, conn: Connection, keys: Sequence[tuple]) -> list[sa.Row]: ...


class SessionLock(ABC):
    """A lock held by one database session for as long as it lives (``acquire`` until ``release``);
    ``conn``, while held, is that session (None where the backend needs no session for it)."""

    conn: Connection | None = None

    @abstractmethod
    def acquire(self) -> bool:
        """Take the lock, or find it held already; False when another session holds it."""

    @abstractmethod
    def release(self) -> None: ...


class Backend(ABC):
    """One database's way of doing what the services need."""

    name: str

    # -- engines and migrations ---------------------------------------------------------------------

    @abstractmethod
    def create_engine(self, url: str, **kwargs) -> Engine:
        """An engine with this backend's connection settings."""

    @abstractmethod
    def lock_migrations(self, conn: Connection) -> None:
        """Within ``conn``'s transaction: one migrator at a time."""

    # -- statements built from a table ----------------------------------------------------------------

    insert: Callable[[sa.Table], Any]  # the dialect's INSERT, which can say ON CONFLICT (both alike)

    def insert_ignoring(self, table: sa.Table, conflict_on: Sequence[str]) -> sa.Insert:
        """``INSERT`` that leaves out a row whose ``conflict_on`` columns match a known row's."""
        return self.insert(table).on_conflict_do_nothing(index_elements=list(conflict_on))

    def upsert(self, table: sa.Table, conflict_on: Sequence[str],
               set_: Mapping[str, Any] | None = None, *, updating: Sequence[str] = (),
               newer: str | None = None) -> sa.Insert:
        """``INSERT`` that updates a known row instead (matched on ``conflict_on``): with ``set_``'s
        values, and each column named in ``updating`` with the value the insert brought. With
        ``newer``, a column: only where the insert brings a higher value of it (else the row stays)."""
        statement = self.insert(table)
        changes = {**(set_ or {}), **{name: statement.excluded[name] for name in updating}}
        where = table.c[newer] < statement.excluded[newer] if newer else None
        return statement.on_conflict_do_update(index_elements=list(conflict_on), set_=changes, where=where)

    @abstractmethod
    def day(self, column: sa.ColumnElement) -> sa.ColumnElement[str]:
        """The UTC calendar day of a timestamp column as ``'YYYY-MM-DD'``."""

    # -- batches ----------------------------------------------------------------------------------------

    @abstractmethod
    def append(self, table: sa.Table, columns: Sequence[str], *, conflict_on: Sequence[str],
               returning: Sequence[str], lock: int, notify: str) -> Append:
        """The bulk append of an ordered log: ``lock`` names what serialises appenders until their
        commit, ``notify`` the channel told of a commit that appended."""

    @abstractmethod
    def insert_many(self, table: sa.Table, columns: Sequence[Key]) -> Batch:
        """``INSERT`` of a batch of rows given as tuples in the order of ``columns``."""

    @abstractmethod
    def insert_new(self, table: sa.Table, *, conflict_on: Sequence[str], returning: Sequence[str],
                   given: Sequence[str] = (), lock: int | None = None) -> Batch:
        """``INSERT`` of every column but the key of rows given as JSON-ready dicts (times as ISO 8601
        text), leaving out known ones; ``given``: columns whose one value for the whole batch comes as a
        keyword of ``execute``. Returns the new rows' ``returning`` columns. With ``lock``: inserters
        take their keys one transaction at a time, held until commit, so keys become visible in
        order (a reader following the table by key never passes one that commits late)."""

    @abstractmethod
    def rows_of_keys(self, table: sa.Table, keys: Sequence[Key], order_by: str) -> Lookup:
        """Every row whose key columns match one of the keys, in ``order_by`` order."""

    @abstractmethod
    def first_per_key(self, table: sa.Table, keys: Sequence[Key], *, where: sa.ColumnElement[bool],
                      order_by: Sequence[sa.ColumnElement]) -> Lookup:
        """For each key, its first row by ``order_by`` among those ``where`` selects (none if none)."""

    @abstractmethod
    def take_oldest(self, table: sa.Table, *, order_by: str,
                    returning: Sequence[str]) -> Callable[[Engine, int], AbstractContextManager[
                        tuple[Connection, list[sa.Row]]]]:
        """``take(engine, limit)``: a context holding a connection and up to ``limit`` of the oldest
        rows (by ``order_by``, unique) that no other taker holds; they are gone once the context
        ends without an exception, and left for the next take otherwise."""

    @abstractmethod
    def vacuum(self, engine: Engine, table: str) -> None:
        """Give back the space of the rows deleted from ``table``, if the backend keeps it."""

    # -- sessions and notices ---------------------------------------------------------------------------

    @abstractmethod
    def session_lock(self, engine: Engine, key: int) -> SessionLock:
        """A lock across processes on ``key``, held by a session of its own."""

    @abstractmethod
    def notify(self, conn: Connection, channel: str) -> None:
        """Within ``conn``'s transaction: tell ``channel``'s listeners when it commits."""

    @abstractmethod
    def listen(self, engine: Engine, channel: str, on_notice: Callable[[], None], stop: threading.Event,
               every: float = 1.0) -> None:
        """Call ``on_notice`` after each burst of notices on ``channel`` until ``stop``."""


T = TypeVar("T")


class once_per_backend(Generic[T]):  # noqa: N801 - used as a decorator
    """``build(backend)`` called once per backend: ``built(engine_or_connection)`` returns its result
    for that bind's backend, so a statement is built (and its cache key generated) once."""

    def __init__(self, build: Callable[[Backend], T]):
        self.build = build
        self.built: dict[str, T] = {}
        self.__doc__ = build.__doc__

    def __call__(self, bind: Bind) -> T:
        from shared.database import backend_of

        return self.of(backend_of(bind))

    def of(self, backend: Backend) -> T:
        try:
            return self.built[backend.name]
        except KeyError:
            return self.built.setdefault(backend.name, self.build(backend))
