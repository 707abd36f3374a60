"""The append-only event log: every accepted delivery, with a global increasing position.

Appends are serialised (``APPEND_LOCK``; the database port's ``append``: on PostgreSQL a
transaction-scoped advisory lock, on SQLite the file's write lock), so positions commit in order: a
reader that follows the log by position (relay, replay) never skips an event that commits late under
a lower position. A commit that appended anything notifies ``APPENDED``, which wakes the relay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.ingest.webhook import WebhookDelivery
from shared import records
from shared.database import Backend, as_utc, once_per_backend, ping, utcnow
from shared.messages import EventEnvelope
from shared.replays import LogFilter

APPEND_LOCK = 726374
APPENDED = "wcml_event_log"  # the NOTIFY channel of a commit that appended events (the relay listens)


@dataclass(frozen=True, kw_only=True)
class LoggedEvent(EventEnvelope):
    """An event as the log keeps it: the envelope's declared fields, and these only the log has."""

    hook_id: str | None = records.text(32)  # X-GitHub-Hook-ID
    event_key: str | None = records.text(64, default=None)  # an imported event's identity, either API
    published_at: str | None = records.moment(default=None)  # set once the relay has published it


metadata = sa.MetaData()
event_log = records.table(
    "event_log", metadata, LoggedEvent,
    sa.UniqueConstraint("delivery_id"),
    sa.Index("ix_event_log_unpublished", "position", postgresql_where=sa.text("published_at IS NULL"),
             sqlite_where=sa.text("published_at IS NULL")),
    sa.Index("ix_event_log_repo_issue", "repo", "issue_number"),
    sa.Index("ix_event_log_received_at", "received_at"),
    sa.Index("ix_event_log_event_key", "event_key", postgresql_where=sa.text("event_key IS NOT NULL"),
             sqlite_where=sa.text("event_key IS NOT NULL")),
)


@dataclass(frozen=True)
class Appended:
    position: int
    new: bool


def where(selection: LogFilter) -> list[sa.ColumnElement[bool]]:
    """The log's rows a filter selects (``shared.replays.LogFilter``, the one filter type)."""
    c = event_log.c
    clauses = []
    if selection.from_position is not None:
        clauses.append(c.position >= selection.from_position)
    if selection.to_position is not None:
        clauses.append(c.position <= selection.to_position)
    if selection.since is not None:
        clauses.append(c.received_at >= selection.since)
    if selection.until is not None:
        clauses.append(c.received_at < selection.until)
    for column, value in ((c.repo, selection.repo), (c.event, selection.event), (c.action, selection.action)):
        if value is not None:
            clauses.append(column == value)
    return clauses


class EventLog:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._append = append_statement(engine)

    def append(self, delivery: WebhookDelivery) -> Appended:
        """Commit the delivery (or find it already logged) before anyone answers GitHub."""
        return self.append_many([delivery])[0]

    def append_many(self, deliveries: Sequence[WebhookDelivery],
                    conn: Connection | None = None) -> list[Appended]:
        """One transaction for many deliveries (group commit); a delivery id already logged,
        or repeated within the batch, comes back as not new with the position it has. ``conn``: a
        connection the caller keeps (the group committer's), else one from the pool."""
        now = utcnow()
        rows, seen = [], set()
        for d in deliveries:
            if d.delivery_id not in seen:
                seen.add(d.delivery_id)
                row = {name: getattr(d, name) for name in _DELIVERED}
                row["received_at"], row["payload"] = now, d.payload_text
                rows.append(row)
        if conn is None:
            with self.engine.connect() as conn:
                inserted, existing = self._insert(conn, rows)
        else:
            inserted, existing = self._insert(conn, rows)
        out, first = [], set()
        for d in deliveries:
            new = d.delivery_id in inserted and d.delivery_id not in first
            first.add(d.delivery_id)
            out.append(Appended(inserted.get(d.delivery_id) or existing[d.delivery_id], new))
        return out

    def _insert(self, conn: Connection, rows: list[dict]) -> tuple[dict[str, int], dict[str, int]]:
        """The new rows' positions, and the known ones'. An imported event whose key the log holds
        (logged under another delivery id: an import from before the key, or through the other API) is
        a known one. On PostgreSQL the append commits as it runs (``Append.ready``), so the append lock
        is freed before the server answers."""
        keyed = {r["event_key"]: r["delivery_id"] for r in rows if r["event_key"] is not None}
        if keyed:
            held = self._held_keys(conn, list(keyed))
            rows = [r for r in rows if r["event_key"] not in held]
        self._append.ready(conn)
        with conn.begin():
            inserted = dict(self._append.execute(conn, rows).all()) if rows else {}
            known = [r["delivery_id"] for r in rows if r["delivery_id"] not in inserted]
            existing = dict(conn.execute(sa.select(event_log.c.delivery_id, event_log.c.position)
                                         .where(event_log.c.delivery_id.in_(known))).all()) if known else {}
        if keyed:
            existing.update((keyed[key], position) for key, position in held.items())
        return inserted, existing

    @staticmethod
    def _held_keys(conn: Connection, keys: list[str]) -> dict[str, int]:
        """The position of each of these event keys the log holds."""
        held: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            held.update(conn.execute(sa.select(event_log.c.event_key, event_log.c.position)
                                     .where(event_log.c.event_key.in_(chunk))).all())
        conn.rollback()  # the read's transaction ends before the append's begins
        return held

    def unpublished(self, limit: int, conn: Connection | None = None, after: int = 0) -> list[EventEnvelope]:
        """The first ``limit`` events not yet published after position ``after`` (every event up to
        it published: ``UNPUBLISHED``), in log order; on ``conn`` if given (an autocommit connection
        kept by the relay: at 100 webhooks/s a pooled connection per call, its checkout and the
        rollback on its return, tripled the relay's CPU an event)."""
        values = {"limit": limit, "after": after}
        if conn is not None:
            return [envelope(row) for row in conn.execute(UNPUBLISHED, values)]
        with self.engine.connect() as conn:
            return [envelope(row) for row in conn.execute(UNPUBLISHED, values)]

    def mark_published(self, positions: Sequence[int], conn: Connection | None = None) -> None:
        """On ``conn`` if given (see ``unpublished``): its own statement, committed as it runs."""
        values = {"positions": list(positions), "now": utcnow()}
        if conn is not None:
            conn.execute(MARK_PUBLISHED, values)
            return
        with self.engine.begin() as conn:
            conn.execute(MARK_PUBLISHED, values)

    def lag(self, after: int = 0) -> tuple[int, float]:
        """Unpublished events, and the age in seconds of the oldest one; ``after``: every event up to
        this position is known to be published (``UNPUBLISHED``)."""
        query = sa.select(sa.func.count(), sa.func.min(event_log.c.received_at)).where(
            event_log.c.published_at.is_(None), event_log.c.position > after)
        with self.engine.connect() as conn:
            count, oldest = conn.execute(query).one()
        age = (utcnow() - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
        return count, age

    def read(self, selection: LogFilter, after: int = 0, limit: int = 500) -> list[EventEnvelope]:
        """A page of the log in position order, strictly after ``after``."""
        query = (sa.select(event_log).where(event_log.c.position > after, *where(selection))
                 .order_by(event_log.c.position).limit(limit))
        with self.engine.connect() as conn:
            return [envelope(row) for row in conn.execute(query)]

    def iterate(self, selection: LogFilter, page: int = 1000) -> Iterator[EventEnvelope]:
        """Every selected event in position order, read a page at a time."""
        after = 0
        while batch := self.read(selection, after, page):
            yield from batch
            after = batch[-1].position

    def known(self, delivery_ids: Sequence[str]) -> set[str]:
        """Which of these delivery ids the log holds."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(delivery_ids), 500):
                chunk = list(delivery_ids[start:start + 500])
                found.update(conn.execute(sa.select(event_log.c.delivery_id)
                                          .where(event_log.c.delivery_id.in_(chunk))).scalars())
        return found

    def count(self, selection: LogFilter) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(event_log)
                                .where(*where(selection))).scalar_one()

    def ping(self) -> None:
        ping(self.engine)


COLUMNS = tuple(name for name in records.names_of(LoggedEvent) if name not in ("position", "published_at"))
"""The columns an append writes: the log gives the position; the relay sets published_at later."""
_DELIVERED = tuple(name for name in COLUMNS if name not in ("received_at", "payload"))  # as parsed


@once_per_backend
def append_statement(backend: Backend):
    """A whole append in one statement, compiled once (on PostgreSQL: from one array per column,
    holding the append lock and notifying ``APPENDED`` before any row exists)."""
    return backend.append(event_log, COLUMNS, conflict_on=["delivery_id"],
                          returning=["delivery_id", "position"], lock=APPEND_LOCK, notify=APPENDED)


# Built once: a statement object keeps its cache key, so each call skips generating it again.
# After ``after``, the last position the relay published: appends hold the append lock through their
# commit, so positions become readable in order, and none can appear below one already read. Without
# the bound, each read walked every entry the unpublished index ever held: a published row's entry
# stays until a vacuum (this machine's PostgreSQL never runs one) and the planner's bitmap scan never
# marks it dead, so the relay's read grew with the log (3,100 entries a read after 4,500 events).
UNPUBLISHED = (sa.select(event_log)
               .where(event_log.c.published_at.is_(None), event_log.c.position > sa.bindparam("after"))
               .order_by(event_log.c.position).limit(sa.bindparam("limit")))
MARK_PUBLISHED = (event_log.update()
                  .where(event_log.c.position.in_(sa.bindparam("positions", expanding=True)))
                  .values(published_at=sa.bindparam("now")))


envelope = records.message_of(EventEnvelope)  # an event-log row as the envelope relay and replays publish


def positions(envelopes: Iterable[EventEnvelope]) -> list[int]:
    return [e.position for e in envelopes]
