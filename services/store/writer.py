"""Results consumer: predictions from the broker into the database, then into the blob store.

A result message holds one prediction or a batch of them (``shared.messages.decode_each``); a bad
one is dead-lettered alone. Rows first, in one transaction per batch (per 2,000 rows of a larger
one), insert-or-ignore on (delivery id, task, model version), so a redelivered batch changes nothing
and a transaction is never half-written; ids are given in commit order (``ID_ORDER_LOCK``).
Then the batch's new rows as one history object (JSON lines, ``documents.py``); a redelivered row's
history object is rewritten from the rows that name it, so a redelivery also repairs an object lost
after the commit. Latest documents are not written here: the transaction marks the issues of its
live rows due (``latest_due``) and a follower of that table writes them (``latest.py``). Exceptions
from the database or S3 propagate: the consumer loop retries transient ones before acking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.store.bulk import each
from services.store.documents import (
    DOCUMENTS,
    HISTORY_PREFIX,
    batch_key,
    history_lines,
    legacy_history_key,
    write_latest,
)
from services.store.latest import best_live_rows, mark_due
from services.store.validation import InvalidPrediction, check
from shared import metrics, records
from shared.blobs import BlobStore
from shared.broker.port import Delivery, Rejection
from shared.database import Backend, as_utc, once_per_backend, utcnow
from shared.messages import MessageError, Prediction, decode_each
from shared.predictions import IDENTITY, predictions, record
from shared.times import iso, parse_time

log = logging.getLogger(__name__)

STORED = metrics.counter("wcml_store_predictions_total", "Predictions received by the store, by outcome",
                         ("task", "outcome"))
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
# Rows per transaction (and per history object): a consumed batch of 100 result messages may hold
# 100 x 256 predictions, and one transaction of all of them would hold its locks for seconds.
ROWS_PER_TRANSACTION = 2_000
# Held from a transaction's insert to its commit: ids become visible in the order they were given,
# so a reader following predictions by id (GET /api/v1/predictions?after=) never passes a row that
# commits late (two store consumers side by side committed ids out of order, and such rows were
# skipped for good).
ID_ORDER_LOCK = 726376


class PredictionWriter:
    def __init__(self, engine: Engine, blobs: BlobStore, on_due: Callable[[], None] = lambda: None):
        self.engine = engine
        self.blobs = blobs
        self.on_due = on_due  # latest documents are due: wake their follower
        # Its series without labels, registered here: not on the page of a process that only imports
        # this module (the latest-documents follower).
        self.rejected = metrics.counter("wcml_store_rejected_results_total",
                                        "Result messages (or items of a batch) the store dead-lettered")
        self.lag = metrics.histogram("wcml_store_lag_seconds", "Seconds from a prediction's scoring "
                                     "(predicted_at) to its row's commit", buckets=LAG_BUCKETS)

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        """Store a batch; return the deliveries refused for good (the caller dead-letters them)."""
        received: dict[tuple[str, str, str], tuple[Prediction, datetime]] = {}
        rejections: list[Rejection] = []
        for delivery in deliveries:
            for item in decode_each(delivery.body, Prediction):  # one prediction, or a batch of them
                try:
                    if item.error is not None:
                        raise MessageError(item.error)
                    prediction = item.message
                    predicted_at = check(prediction)
                except (MessageError, InvalidPrediction) as exc:
                    reason = " ".join(str(exc).split())[:300]
                    log.warning("rejected result message", extra={"reason": reason,
                                                                   "message_id": delivery.message_id})
                    rejections.append(Rejection(delivery.carrying(item.alone), reason))  # it alone
                    continue
                received.setdefault(prediction.key, (prediction, predicted_at))  # first copy wins
        self.rejected.inc(len(rejections))
        # key order: concurrent consumers lock the unique index in the same order (no deadlock)
        keys = sorted(received)
        for start in range(0, len(keys), ROWS_PER_TRANSACTION):
            self._store([received[k] for k in keys[start:start + ROWS_PER_TRANSACTION]])
        return rejections

    def _store(self, received: list[tuple[Prediction, datetime]]) -> None:
        """One transaction, then the history documents of its rows."""
        key = batch_key(utcnow())
        rows = [_row(prediction, predicted_at, key) for prediction, predicted_at in received]
        with self.engine.begin() as conn:
            stored, inserted = _insert(conn, rows)
            redelivered = {r["blob_key"] for r in stored if r["id"] not in inserted and r["blob_key"] != key}
            history = _by_key([*(r for r in stored if r["id"] in inserted), *_named(conn, redelivered)])
            mark_due(conn, stored)  # a redelivered row's too: it repairs a latest document lost since
        committed = utcnow()
        for _, predicted_at in received:
            self.lag.observe(max(0.0, (committed - predicted_at).total_seconds()))
        for row in stored:
            STORED.labels(row["task"], "stored" if row["id"] in inserted else "duplicate").inc()
        write_history(self.blobs, history)
        self.on_due()


_values = records.row_of(Prediction)


def _row(p: Prediction, predicted_at: datetime, blob_key: str) -> dict[str, Any]:
    """A prediction's row: its declared fields, ``predicted_at`` as parsed (one spelling), its batch's
    history object."""
    row = _values(p)
    row["predicted_at"] = iso(predicted_at)
    row["blob_key"] = blob_key
    return row


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[int]]:
    """Insert what is new, ignore what is known; return the records (``records.record``) of every row
    of these identities, in id order, and the new rows' ids."""
    now = utcnow()
    new = INSERT_NEW(conn).execute(conn, rows, stored_at=now).all()
    inserted = {row.id for row in new}
    if len(new) == len(rows):  # all new: their records are what was sent, with id and stored_at
        ids = {(row.delivery_id, row.task, row.model_version): row.id for row in new}
        stored_at = iso(now)
        return sorted(({**row, "id": ids[_identity(row)], "stored_at": stored_at} for row in rows),
                      key=lambda r: r["id"]), inserted
    return [record(r) for r in ROWS_BY_IDENTITY(conn).rows(conn, [_identity(r) for r in rows])], inserted


def _identity(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["delivery_id"], row["task"], row["model_version"])


@once_per_backend
def INSERT_NEW(backend: Backend):  # noqa: N802 - a statement, built once per backend
    """The batch's rows but those whose identity is known, returning the new rows' ids and identities
    (on PostgreSQL: one statement compiled once, the batch one JSON text)."""
    return backend.insert_new(predictions, conflict_on=IDENTITY, returning=("id", *IDENTITY),
                              given=("stored_at",), lock=ID_ORDER_LOCK)


@once_per_backend
def ROWS_BY_IDENTITY(backend: Backend):  # noqa: N802 - a statement, built once per backend
    """The rows of these identities, in id order (on PostgreSQL: one lookup of the unique index per
    key)."""
    return backend.rows_of_keys(predictions, [(name, sa.String()) for name in IDENTITY], order_by="id")


def _named(conn: Connection, keys: set[str]) -> list[dict[str, Any]]:
    """The records of every row a history object holds (a redelivery rewrites the objects its rows
    were in)."""
    if not keys:
        return []
    return [record(row) for row in
            conn.execute(sa.select(predictions).where(predictions.c.blob_key.in_(sorted(keys))))]


def _history_key(row: dict[str, Any]) -> str:
    """The history object a row's record is in: its batch's, or (stored before batching) its own."""
    return row["blob_key"] or legacy_history_key(row["task"], row["repo"], row["number"],
                                                 row["model_version"], row["delivery_id"])


def _by_key(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    documents: dict[str, list[dict[str, Any]]] = {}
    seen: set[int] = set()
    for row in records:
        if row["id"] not in seen:
            seen.add(row["id"])
            documents.setdefault(_history_key(row), []).append(row)
    return documents


def write_history(blobs: BlobStore, history: dict[str, list[dict[str, Any]]]) -> None:
    """The history objects (one per batch, or a legacy row's own). Objects are independent, so they
    are written concurrently where the store is a network one: S3 round trips, not CPU, bound them."""
    def put(item: tuple[str, list[dict[str, Any]]]) -> None:
        key, documents = item
        if key.endswith(".jsonl"):
            blobs.put(key, history_lines(documents))
        else:
            blobs.put_json(key, documents[0])

    each(put, list(history.items()), blobs.concurrency)
    DOCUMENTS.labels("history").inc(len(history))


def repair(engine: Engine, blobs: BlobStore, since: datetime | str | None = None) -> int:
    """Write history documents missing for rows stored since ``since`` and the latest documents
    those rows' issues lack or hold behind the database; return how many objects were written."""
    if isinstance(since, str):
        since = parse_time(since)
    elif since is not None:  # SQLite compares the UTC text, so bind UTC
        since = as_utc(since).astimezone(UTC)
    everything = since is None  # a narrow repair looks up only the objects its rows name
    known = set(blobs.keys(HISTORY_PREFIX)) if everything else set()
    checked: set[str] = set()
    missing: set[str] = set()
    issues: set[tuple[str, str, int]] = set()
    written = 0
    for row in _rows_since(engine, since):
        key = _history_key(row._mapping)
        if key not in checked:
            checked.add(key)
            if key not in known and (everything or blobs.get(key) is None):
                missing.add(key)
        if row.replay_id is None or row.fills_live:
            issues.add((row.task, row.repo, row.number))
    with engine.connect() as conn:
        batched = _by_key(_named(conn, {k for k in missing if k.endswith(".jsonl")}))
    legacy = {k for k in missing if not k.endswith(".jsonl")}
    for row in _rows_since(engine, since) if legacy else ():
        key = _history_key(row._mapping)
        if key in legacy:
            batched[key] = [{**record(row), "blob_key": key}]
    write_history(blobs, batched)
    written += len(batched)
    ordered = sorted(issues)
    with engine.connect() as conn:
        for start in range(0, len(ordered), 1000):
            for best in best_live_rows(conn, ordered[start:start + 1000]):
                written += write_latest(blobs, record(best), replace_equal=False)
    DOCUMENTS.labels("repair").inc(written)
    return written


def _rows_since(engine: Engine, since: datetime | None, page: int = 1000) -> Iterable[sa.Row]:
    """All rows stored since ``since`` in id order, a page at a time (bounded memory)."""
    last = 0
    while True:
        query = sa.select(predictions).where(predictions.c.id > last)
        if since is not None:
            query = query.where(predictions.c.stored_at >= since)
        with engine.connect() as conn:
            rows = list(conn.execute(query.order_by(predictions.c.id).limit(page)))
        yield from rows
        if len(rows) < page:
            return
        last = rows[-1].id
