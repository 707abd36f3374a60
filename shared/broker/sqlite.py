"""A durable broker for the embedded mode: the in-process broker's routing and ack semantics, with
its queues kept in a SQLite file, so what is between services survives any stop of the process.

A message is a row: published in the publisher's transaction, taken (``taken`` = 1) when a consumer
gets it, deleted when acknowledged, made ready again when requeued. The serving instance calls
``recover`` at start: whatever its last run had taken and not acknowledged is ready again
(at-least-once; the consumers are idempotent). Other processes in the same folder (``wcml dead``,
``wcml replay``) open the same file and see the same queues.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from shared.broker.batches import Stopped, run_batch
from shared.broker.memory import topic_matches
from shared.broker.port import (
    DEFAULT_CONSUME,
    BatchHandler,
    Broker,
    BrokerUnavailable,
    ConsumeOptions,
    Delivery,
    Exchange,
    Outgoing,
    PublishError,
    Queue,
)
from shared.messages import DEAD_EXCHANGE

DELIVERY_LIMIT = 10
POLL = 0.2  # seconds between looks at the file for what another process published

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    message_id TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    taken INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_messages_ready ON messages (queue, taken, id);
CREATE TABLE IF NOT EXISTS topology (kind TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,
                                     PRIMARY KEY (kind, name));
"""


class SQLiteBroker(Broker):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # the queues hold every payload in flight: readable by its owner only
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._exchanges: dict[str, Exchange] = {}
        self._queues: dict[str, Queue] = {}
        self._cond = threading.Condition()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._db().executescript(SCHEMA)

    # -- the file ----------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a transaction survives the process, whatever kills it
            self._local.db = db
            with self._cond:
                self._connections.append(db)
        return db

    def _transaction(self):
        broker = self

        class Transaction:
            def __enter__(self):
                self.db = broker._db()
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    raise BrokerUnavailable(f"queue file {broker.path}: {exc}") from exc
                return self.db

            def __exit__(self, kind, exc, tb):
                self.db.execute("ROLLBACK" if kind else "COMMIT")
                return False

        return Transaction()

    def recover(self) -> int:
        """At the serving instance's start: what its last run had taken and not acknowledged is ready
        again. Returns how many."""
        with self._transaction() as db:
            return db.execute("UPDATE messages SET taken = 0 WHERE taken <> 0").rowcount

    # -- the port ------------------------------------------------------------
    def declare(self, exchanges: Sequence[Exchange], queues: Sequence[Queue]) -> None:
        """Kept in the file too: a process that declared less (``wcml dead requeue``) routes by what
        every process sharing the file declared, as a broker server would."""
        rows = [("exchange", ex.name, json.dumps([ex.name, ex.type])) for ex in exchanges]
        rows += [("queue", q.name, json.dumps([q.name, [list(b) for b in q.bindings], q.dead_letter]))
                 for q in queues]
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO topology (kind, name, spec) VALUES (?, ?, ?)", rows)
        self._load_topology()

    def _load_topology(self) -> None:
        rows = self._db().execute("SELECT kind, spec FROM topology").fetchall()
        with self._cond:
            for kind, spec in rows:
                values = json.loads(spec)
                if kind == "exchange":
                    self._exchanges.setdefault(values[0], Exchange(*values))
                else:
                    name, bindings, dead_letter = values
                    self._queues.setdefault(name, Queue(name, tuple(map(tuple, bindings)), dead_letter))

    def _route(self, m: Outgoing) -> list[str]:
        exchange = self._exchanges.get(m.exchange)
        if exchange is None:
            return []
        out = []
        for q in self._queues.values():
            for ex_name, key in q.bindings:
                if ex_name == m.exchange and (
                        exchange.type == "fanout" or (exchange.type == "direct" and key == m.routing_key)
                        or (exchange.type == "topic" and topic_matches(key, m.routing_key))):
                    out.append(q.name)
                    break
        return out

    def publish(self, messages: Sequence[Outgoing]) -> None:
        rows = []
        for m in messages:
            queues = self._route(m)
            if not queues:  # perhaps declared since by another process
                self._load_topology()
                queues = self._route(m)
            if not queues:
                raise PublishError(f"unroutable: {m.exchange} {m.routing_key}")
            rows.extend((q, m.exchange, m.routing_key, m.body, json.dumps(m.headers), m.message_id)
                        for q in queues)
        with self._transaction() as db:
            db.executemany("INSERT INTO messages (queue, exchange, routing_key, body, headers, message_id) "
                           "VALUES (?, ?, ?, ?, ?, ?)", rows)
        with self._cond:
            self._cond.notify_all()

    def _take(self, queue: str, limit: int) -> list[Delivery]:
        with self._transaction() as db:
            rows = db.execute("SELECT id, exchange, routing_key, body, headers, message_id, deliveries "
                              "FROM messages WHERE queue = ? AND taken = 0 ORDER BY id LIMIT ?",
                              (queue, limit)).fetchall()
            if not rows:
                return []
            out, dead = [], []
            for row_id, exchange, key, body, headers, message_id, deliveries in rows:
                if deliveries >= DELIVERY_LIMIT and self._queues[queue].dead_letter:
                    dead.append(row_id)
                    continue
                out.append(Delivery(body=bytes(body), routing_key=key, exchange=exchange,
                                    headers=json.loads(headers), redelivered=deliveries > 0, tag=row_id,
                                    message_id=message_id))
            db.executemany("UPDATE messages SET taken = 1, deliveries = deliveries + 1 WHERE id = ?",
                           [(d.tag,) for d in out])
            for row_id in dead:  # over its delivery limit: to the dead queue, with the reason
                headers = json.loads(db.execute("SELECT headers FROM messages WHERE id = ?",
                                                (row_id,)).fetchone()[0])
                headers.update({"x-wcml-reason": "delivery limit exceeded", "x-wcml-queue": queue})
                db.execute("UPDATE messages SET queue = ?, exchange = ?, routing_key = ?, headers = ?, "
                           "deliveries = 0 WHERE id = ?", (self._dead_queue(), DEAD_EXCHANGE, queue,
                                                           json.dumps(headers), row_id))
            return out

    def _dead_queue(self) -> str:
        return next(q.name for q in self._queues.values() if any(ex == DEAD_EXCHANGE for ex, _ in q.bindings))

    def consume(self, queue: str, handler: BatchHandler, stop: threading.Event,
                options: ConsumeOptions = DEFAULT_CONSUME) -> None:
        if queue not in self._queues:
            raise KeyError(f"no queue {queue!r} declared")
        busy = False  # messages arrived while the last batch was handled (ConsumeOptions.max_wait)
        while not stop.is_set():
            batch = self._take(queue, options.max_batch)
            deadline = time.monotonic() + options.max_wait
            while batch and busy and len(batch) < options.max_batch and time.monotonic() < deadline:
                with self._cond:
                    self._cond.wait(min(options.arrival_gap, max(0.0, deadline - time.monotonic())))
                more = self._take(queue, options.max_batch - len(batch))
                if not more:
                    break  # a gap: the batch is what came
                batch += more
            busy = bool(batch)
            if not batch:
                with self._cond:
                    self._cond.wait(POLL)
                continue
            try:
                run_batch(batch, handler, queue, self.publish, time.sleep, stop)
            except Stopped:
                self.settle(batch, requeue=True)
                return
            self.settle(batch, requeue=False)

    def get(self, queue: str, limit: int) -> list[Delivery]:
        return self._take(queue, limit)

    def settle(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        ids = [(d.tag,) for d in deliveries]
        with self._transaction() as db:
            if requeue:
                db.executemany("UPDATE messages SET taken = 0 WHERE id = ?", ids)
            else:
                db.executemany("DELETE FROM messages WHERE id = ?", ids)
        if requeue:
            with self._cond:
                self._cond.notify_all()

    def purge(self, queue: str) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM messages WHERE queue = ? AND taken = 0", (queue,)).rowcount

    def queue_depth(self, queue: str) -> int:
        return self._db().execute("SELECT count(*) FROM messages WHERE queue = ? AND taken = 0",
                                  (queue,)).fetchone()[0]

    def in_flight(self) -> int:
        """Messages taken and not yet acknowledged, in every queue."""
        return self._db().execute("SELECT count(*) FROM messages WHERE taken <> 0").fetchone()[0]

    def close(self) -> None:
        with self._cond:
            connections, self._connections = self._connections, []
        for db in connections:
            try:
                db.close()
            except sqlite3.ProgrammingError:  # another thread's: closed with its thread
                pass
