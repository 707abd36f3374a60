"""Group commit: concurrent webhook requests share one database commit.

Commit latency, not CPU, limits one-commit-per-request ingest (docs/benchmarks.md measures it). Each
request thread queues its delivery and waits; one writer thread commits whatever is queued in one
transaction, so a lone request waits only for its own commit and a burst shares commits.

The writer keeps its database connection: a connection from the pool would be pinged
before each use, a round trip per commit.
A kept connection found broken is replaced and the batch tried once more on the new
one, which is what the ping would have done, only after the fact.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import sqlalchemy as sa

from services.ingest.event_log import Appended, EventLog
from services.ingest.webhook import WebhookDelivery
from shared.errors import is_transient


class Unstorable(ValueError):
    """A delivery the event log refuses for a value of its own: the sender's error (400)."""


@dataclass
class _Pending:
    delivery: WebhookDelivery
    done: threading.Event = field(default_factory=threading.Event)
    result: Appended | None = None
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, event_log: EventLog, max_batch: int = 256, timeout: float = 8.0):
        self.log = event_log
        self.max_batch = max_batch
        self.timeout = timeout
        self.queue: queue.Queue[_Pending] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: sa.Connection | None = None  # the writer thread's own

    def append(self, delivery: WebhookDelivery) -> Appended:
        """Return once the delivery is committed; raise what the commit raised (or TimeoutError)."""
        self._ensure_writer()
        pending = _Pending(delivery)
        self.queue.put(pending)
        if not pending.done.wait(self.timeout):
            raise TimeoutError("event log commit took too long")
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _ensure_writer(self) -> None:
        # Started on first use, so a forking server starts it in each worker, not in the master.
        if self._writer is None or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._write, name="group-commit", daemon=True)
                    self._writer.start()

    def _write(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)
            for pending in batch:
                pending.done.set()

    def _append(self, deliveries: list[WebhookDelivery]) -> list[Appended]:
        """On the kept connection; one that proves broken is replaced and the batch tried again once
        (a delivery that did commit before the break comes back as known: idempotent)."""
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed or self._conn.invalidated:
                self._conn = self.log.engine.connect()
            try:
                return self.log.append_many(deliveries, self._conn)
            except sa.exc.DBAPIError as exc:
                if not exc.connection_invalidated or attempt == 2:
                    raise
                self._conn.close()
                self._conn = None
        raise AssertionError("unreachable")

    def _commit(self, batch: list[_Pending]) -> None:
        """Commit the batch; a failure of its own (not an outage) is narrowed down by halves, so only
        the delivery that causes it is refused and its neighbours are stored."""
        try:
            appended = self._append([p.delivery for p in batch])
            for pending, result in zip(batch, appended, strict=True):
                pending.result = result
        except Exception as exc:  # noqa: BLE001 - an outage fails every waiter (503); the rest is split
            if is_transient(exc):
                for pending in batch:
                    pending.error = exc
            elif len(batch) == 1:
                batch[0].error = Unstorable(f"the event log cannot hold this delivery ({type(exc).__name__})")
            else:
                self._commit(batch[: len(batch) // 2])
                self._commit(batch[len(batch) // 2:])
