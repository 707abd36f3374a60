"""Latest documents, written by a follower of the table rather than inside the results consumer.

The consumer stores a batch's rows and its history object, and in the same transaction adds a row to
``latest_due`` for each live prediction it stored: that issue's latest document is due. This
follower takes due rows in order, asks the database for each issue's best live row (by position,
then id), writes those documents, and only then lets the due rows go: a crash or an S3 outage leaves
them due, so every live prediction's latest document is written at least once, and an issue seen
many times while the follower was busy is written once. The database port's ``take_oldest`` takes
them: on PostgreSQL several store replicas each run one follower, and ``FOR UPDATE SKIP LOCKED``
gives each its own due rows; SQLite has one process, and there the due rows are read, written, then
deleted, so a follower never holds the only write lock while it writes files.

One file per issue is a few system calls: the follower writes them apart from the consumer, so no
batch of predictions waits on them (docs/benchmarks.md, "Latest documents by a follower of the table").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.store.bulk import each
from services.store.documents import DOCUMENTS, write_latest
from services.store.tables import latest_due
from shared.blobs import BlobStore
from shared.database import Backend, backend_of, once_per_backend
from shared.errors import is_transient
from shared.lifecycle import pause
from shared.predictions import LIVE_RECORD, predictions, record

log = logging.getLogger(__name__)

Issue = tuple[str, str, int]  # (task, repo, number)


def mark_due(conn: Connection, rows: Sequence[dict]) -> None:
    """In the consumer's transaction: the live rows' issues (rows as ``records.record``s) are due a
    latest document, once each."""
    due = list(dict.fromkeys((r["task"], r["repo"], r["number"]) for r in rows
                             if r["replay_id"] is None or r["fills_live"]))
    if not due:
        return
    MARK_DUE(conn).execute(conn, due)


_ISSUE = ("task", "repo", "number")
_ISSUE_KEYS = (("task", sa.String()), ("repo", sa.String()), ("number", sa.Integer()))


@once_per_backend
def MARK_DUE(backend: Backend):  # noqa: N802 - a statement, built once per backend
    """The due rows of a batch of issues (``_ISSUE`` tuples); on PostgreSQL from one array per column,
    one statement compiled once. No ``NOTIFY`` for a follower in another process: PostgreSQL lets one
    notifying transaction commit at a time (a lock held through its commit's flush), so the store's
    commits would queue behind ingest's appends, which notify the relay. That follower polls
    (``idle``)."""
    return backend.insert_many(latest_due, _ISSUE_KEYS)


class LatestDocuments:
    def __init__(self, engine: Engine, blobs: BlobStore, *, batch: int = 2_000, idle: float = 0.2,
                 linger: float = 0.1, vacuum_every: int = 50_000):
        self.engine = engine
        self.blobs = blobs
        self.batch = batch
        self.idle = idle
        self.linger = linger
        self.vacuum_every = vacuum_every
        self.taken_since_vacuum = 0
        self.wakeup = threading.Event()

    def wake(self) -> None:
        """Called when the consumer marked issues due, so the follower does not wait out its poll."""
        self.wakeup.set()

    def write_due(self) -> int:
        """Write the latest documents of one page of due issues; return how many due rows it took."""
        with TAKE_DUE(self.engine)(self.engine, self.batch) as (conn, taken):
            self._write(conn, {(r.task, r.repo, r.number) for r in taken})  # taken for good if it succeeds
        self.taken_since_vacuum += len(taken)
        if self.taken_since_vacuum >= self.vacuum_every:
            self.vacuum()
        return len(taken)

    def vacuum(self) -> None:
        """Give back the space of the due rows taken (PostgreSQL; SQLite reuses it). Each one taken leaves
        a dead row and its index entry until a vacuum; where autovacuum is off nothing else runs one, and
        taking the oldest due rows would walk every entry ever taken, slower as they grow. Where
        autovacuum is on this is one more, on a table of a few live rows. ``SKIP_LOCKED``: a replica's
        follower vacuuming it already is not waited for."""
        self.taken_since_vacuum = 0
        try:
            backend_of(self.engine).vacuum(self.engine, latest_due.name)
        except sa.exc.SQLAlchemyError as exc:  # never worth stopping the documents for
            log.warning("latest_due not vacuumed: %s", str(exc).splitlines()[0][:200])

    def drain(self) -> int:
        """Write every due document (tests; a store that stops leaves the rest due for its next start)."""
        total = 0
        while taken := self.write_due():
            total += taken
        return total

    def run(self, stop: threading.Event) -> None:
        """Write due documents until ``stop``. Woken by the consumer, it lingers a moment first, so the
        issues of several of its transactions go in one of the follower's (at low rates it took one
        transaction's issues at a time, a database round trip each); behind by a whole page, it goes
        straight on."""
        delay = self.idle
        while not stop.is_set():
            self.wakeup.clear()  # a wake-up after this is for rows the read below may not see
            try:
                if self.write_due() == self.batch:
                    continue
                delay = self.idle
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("latest documents paused: %s", str(exc).splitlines()[0][:200])
                delay = min(max(delay * 2, 0.2), 5.0)
            pause(self.wakeup, stop, delay)
            stop.wait(self.linger)

    def _write(self, conn: Connection, issues: set[Issue]) -> None:
        if not issues:
            return
        documents = [record(row) for row in best_live_rows(conn, sorted(issues))]
        written = each(lambda doc: write_latest(self.blobs, doc), documents, self.blobs.concurrency)
        DOCUMENTS.labels("latest").inc(sum(written))


@once_per_backend
def TAKE_DUE(backend: Backend):  # noqa: N802 - a statement, built once per backend
    """The oldest due rows no other follower holds, gone once their documents are written."""
    return backend.take_oldest(latest_due, order_by="id", returning=_ISSUE)


@once_per_backend
def BEST_LIVE(backend: Backend):  # noqa: N802 - a statement, built once per backend
    """For each issue, its best live row (by position, then id). On PostgreSQL by one index lookup
    (``LATERAL … ORDER BY position DESC, id DESC LIMIT 1``), the first entry of
    ``ix_predictions_issue_position`` read backwards. A window over ``(task, repo, number) IN (…)`` was
    planned on the table's statistics, and where they were stale (autovacuum off) it scanned every row of
    the repository, slower as the table grew (docs/benchmarks.md). The lookup needs no statistics only
    because the index is in its order: with the id last (``ix_predictions_issue`` until 0009) each issue's
    rows had to be sorted, and on a small new table the planner scanned the task's rows instead."""
    return backend.first_per_key(predictions, _ISSUE_KEYS, where=LIVE_RECORD,
                                 order_by=(predictions.c.position.desc(), predictions.c.id.desc()))


def best_live_rows(conn: Connection, issues: Sequence[Issue]) -> list[sa.Row]:
    """Each issue's best live row: what its latest document holds."""
    return BEST_LIVE(conn).rows(conn, issues)

