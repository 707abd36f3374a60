"""Results consumer: predictions from the broker into the database, then into the blob store.

Rows first, in one transaction per batch, insert-or-ignore on (delivery id, task, model
version), so a redelivered batch changes nothing and a batch is never half-written.
Documents second, from the stored rows, for every valid prediction of the batch, so a
redelivery also repairs an object lost after the commit. Exceptions from the database
or S3 propagate: the consumer loop retries transient ones before acking anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.store.documents import HISTORY_PREFIX, history_key, issue_history_prefix, rank, write_latest
from services.store.records import record
from services.store.tables import IDENTITY, LIVE_RECORD, predictions
from services.store.validation import InvalidPrediction, check
from shared import metrics
from shared.blobs import BlobStore
from shared.broker.port import Delivery, Rejection
from shared.database import as_utc, utcnow
from shared.messages import MessageError, Prediction, decode
from shared.times import parse_time

log = logging.getLogger(__name__)

STORED = metrics.counter("wcml_store_predictions_total", "Predictions received by the store, by outcome",
                         ("task", "outcome"))
REJECTED = metrics.counter("wcml_store_rejected_total", "Result messages dead-lettered by the store")
DOCUMENTS = metrics.counter("wcml_store_documents_written_total", "Blob documents written", ("kind",))


class PredictionWriter:
    def __init__(self, engine: Engine, blobs: BlobStore):
        self.engine = engine
        self.blobs = blobs

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        """Store a batch; return the deliveries refused for good (the caller dead-letters them)."""
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        rejections: list[Rejection] = []
        for delivery in deliveries:
            try:
                prediction = decode(delivery.body, Prediction)
                predicted_at = check(prediction)
            except (MessageError, InvalidPrediction) as exc:
                reason = " ".join(str(exc).split())[:300]
                log.warning("rejected result message", extra={"reason": reason,
                                                               "message_id": delivery.message_id})
                rejections.append(Rejection(delivery, reason))
                continue
            rows.setdefault(prediction.key, _row(prediction, predicted_at))  # first copy wins
        REJECTED.inc(len(rejections))
        if rows:
            with self.engine.begin() as conn:
                # key order: concurrent consumers lock the unique index in the same order (no deadlock)
                inserted = _insert(conn, [rows[key] for key in sorted(rows)])
                stored = _select(conn, list(rows))
            for row in stored:
                STORED.labels(row.task, "stored" if row.id in inserted else "duplicate").inc()
            write_documents(self.blobs, [record(row) for row in stored])
        return rejections


def _row(p: Prediction, predicted_at: datetime) -> dict[str, Any]:
    return {
        "delivery_id": p.delivery_id, "task": p.task, "model_version": p.model_version,
        "position": p.position, "event": p.event, "action": p.action, "repo": p.repo,
        "number": p.number, "label": p.label, "confidence": float(p.confidence),
        "probabilities": {k: float(v) for k, v in p.probabilities.items()},
        "predicted_at": predicted_at, "replay_id": p.replay_id,
        "fills_live": p.fills_live, "source": p.source,
        "blob_key": history_key(p.task, p.repo, p.number, p.model_version, p.delivery_id),
    }


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> set[int]:
    """Insert what is new, ignore what is known; return the new rows' ids."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - create_engine accepts only these two in practice
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    now = utcnow()
    statement = (insert(predictions).on_conflict_do_nothing(index_elements=list(IDENTITY))
                 .returning(predictions.c.id))
    return set(conn.execute(statement, [{**row, "stored_at": now} for row in rows]).scalars())


def _select(conn: Connection, keys: list[tuple[str, str, str]]) -> list[sa.Row]:
    identity = sa.tuple_(*(predictions.c[name] for name in IDENTITY))
    query = sa.select(predictions).where(identity.in_(keys)).order_by(predictions.c.id)
    return list(conn.execute(query))


def write_documents(blobs: BlobStore, documents: Sequence[dict[str, Any]], workers: int = 8) -> None:
    """History document for each; latest for the last live prediction of each issue and task.

    Objects are independent (one writer per latest key per batch), so they are written
    concurrently: S3 round trips, not CPU, bound a batch.
    """
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}
    for doc in documents:
        if doc["replay_id"] is None or doc["fills_live"]:
            issue = (doc["task"], doc["repo"], doc["number"])
            if rank(doc) >= rank(latest.get(issue)):
                latest[issue] = doc
    _each(lambda doc: blobs.put_json(doc["blob_key"], doc), documents, workers)
    DOCUMENTS.labels("history").inc(len(documents))
    written = _each(lambda doc: write_latest(blobs, doc), list(latest.values()), workers)
    DOCUMENTS.labels("latest").inc(sum(written))


def _each(function, items: Sequence, workers: int) -> list:
    """``function`` over ``items`` on a few threads; the first exception propagates."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))


def repair(engine: Engine, blobs: BlobStore, since: datetime | str | None = None) -> int:
    """Write history documents missing for rows stored since ``since`` and the latest documents
    those rows' issues lack or hold behind the database; return how many objects were written."""
    if isinstance(since, str):
        since = parse_time(since)
    elif since is not None:  # SQLite compares the UTC text, so bind UTC
        since = as_utc(since).astimezone(UTC)
    everything = since is None  # a narrow repair lists only the issues it touches
    known = set(blobs.keys(HISTORY_PREFIX)) if everything else set()
    listed: set[str] = set()
    issues: set[tuple[str, str, int]] = set()
    written = 0
    for row in _rows_since(engine, since):
        key = row.blob_key or history_key(row.task, row.repo, row.number, row.model_version,
                                          row.delivery_id)
        prefix = issue_history_prefix(row.task, row.repo, row.number)
        if not everything and prefix not in listed:
            listed.add(prefix)
            known.update(blobs.keys(prefix))
        if key not in known:
            blobs.put_json(key, {**record(row), "blob_key": key})
            known.add(key)
            written += 1
        if row.replay_id is None or row.fills_live:
            issues.add((row.task, row.repo, row.number))
    with engine.connect() as conn:
        for task, repo, number in sorted(issues):
            best = conn.execute(
                sa.select(predictions)
                .where(predictions.c.task == task, predictions.c.repo == repo,
                       predictions.c.number == number, LIVE_RECORD)
                .order_by(predictions.c.position.desc(), predictions.c.id.desc()).limit(1)).one()
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
