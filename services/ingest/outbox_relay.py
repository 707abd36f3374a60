"""Outbox relay: publish what the log committed and the broker has not confirmed yet.

At-least-once: an event is marked published only after the broker confirmed it,
so a crash between the two republishes it and the idempotent consumers absorb
the duplicate. One relay publishes at a time (a PostgreSQL advisory lock), so
several ingest replicas can each run one.

It wakes when an append commits: by the log's NOTIFY on PostgreSQL (ingest's HTTP
workers are other processes), by ``wake`` in the embedded mode. Between wakes it
polls, slowly, for what a lost notice would leave behind.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from services.ingest.event_log import APPENDED, EventLog, positions
from shared import metrics
from shared.broker import Broker, Outgoing, PublishError
from shared.database import backend_of
from shared.lifecycle import pause
from shared.messages import EVENTS_EXCHANGE, encode
from shared.notices import listen

log = logging.getLogger(__name__)
RELAY_LOCK = 726375


class RelayMetrics:
    """The relay's own series, registered when a relay is made: not in ingest's workers, which import
    this module and serve their own page."""

    def __init__(self):
        self.published = metrics.counter("wcml_relay_events_published_total",
                                         "Events confirmed by the broker")
        self.lag_events = metrics.gauge("wcml_relay_lag_events", "Committed events not yet published")
        self.lag_seconds = metrics.gauge("wcml_relay_lag_seconds", "Age of the oldest unpublished event")


class OutboxRelay:
    def __init__(self, event_log: EventLog, broker: Broker, *, batch: int = 500, idle: float = 0.25):
        self.log = event_log
        self.broker = broker
        self.batch = batch
        self.idle = idle
        self.wakeup = threading.Event()
        # Every event up to this position is published (event_log.UNPUBLISHED); it stays true while
        # another relay holds the lock, since a mark is never undone, so a relay that takes it over
        # reads on from here.
        self.published_through = 0
        self.metrics = RelayMetrics()

    def wake(self) -> None:
        """Called after an append (or its notice), so an idle relay does not wait out its poll interval."""
        self.wakeup.set()

    def relay_once(self, conn: sa.Connection | None = None) -> int:
        """Publish one page of unpublished events; return how many were confirmed. ``conn``: the
        relay lock's own session (autocommit), else a pooled connection per statement."""
        pending = self.log.unpublished(self.batch, conn, after=self.published_through)
        if not pending:
            return 0
        self.broker.publish([Outgoing(EVENTS_EXCHANGE, e.routing_key, encode(e), message_id=e.delivery_id)
                             for e in pending])
        self.log.mark_published(positions(pending), conn)
        self.published_through = pending[-1].position
        self.metrics.published.inc(len(pending))
        return len(pending)

    def run(self, stop: threading.Event) -> None:
        delay = self.idle
        lock = _RelayLock(self.log.engine)
        watcher = threading.Thread(target=self._watch_lag, args=(stop,), name="relay-lag", daemon=True)
        watcher.start()
        listener = threading.Thread(target=listen, args=(self.log.engine, APPENDED, self.wake, stop),
                                    name="relay-notices", daemon=True)
        listener.start()
        while not stop.is_set():
            self.wakeup.clear()  # an append after this is in the read below, or wakes the pause after it
            try:
                if not lock.acquire():
                    stop.wait(1.0)
                    continue
                sent = self.relay_once(lock.conn)  # a broken session loses the lock too: both renewed below
                delay = self.idle
                if sent == self.batch:  # a full page: more may be waiting
                    continue
            except (PublishError, sa.exc.OperationalError, sa.exc.DBAPIError) as exc:
                lock.release()
                log.warning("relay paused: %s", str(exc).splitlines()[0][:200])
                delay = min(max(delay * 2, 0.2), 5.0)
            pause(self.wakeup, stop, delay)
        lock.release()
        watcher.join(2)
        listener.join(2)

    def _watch_lag(self, stop: threading.Event, every: float = 0.5) -> None:
        """Its own thread: the gauges stay current while a publish waits on an unreachable broker."""
        while not stop.wait(every):
            try:
                count, age = self.log.lag(self.published_through)
            except sa.exc.SQLAlchemyError:
                continue
            self.metrics.lag_events.set(count)
            self.metrics.lag_seconds.set(age)


class _RelayLock:
    """The relay lock: a session lock of the database port (on PostgreSQL an advisory lock held by a
    session of its own; SQLite has one process anyway).

    The relay reads and marks the log on this session (``conn``, in autocommit; None where the
    backend needs no session): whoever holds the lock is the one publishing, and a session that
    breaks ends both at once.
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.lock = backend_of(engine).session_lock(engine, RELAY_LOCK)
        self.standing_by = False

    @property
    def conn(self) -> sa.Connection | None:
        return self.lock.conn

    def acquire(self) -> bool:
        if self.lock.acquire():
            if self.standing_by:
                log.info("relay lock acquired: this relay publishes now")
            self.standing_by = False
            return True
        if not self.standing_by:
            log.info("another relay holds the relay lock: standing by")
        self.standing_by = True
        return False

    def release(self) -> None:
        self.lock.release()
