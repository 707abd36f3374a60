"""In-process broker for the embedded mode: the same routing and ack semantics, no server.

Messages live in memory only; in the embedded mode the event log (SQLite) is
the durable record, and what was in flight at a crash can be replayed from it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.broker.batches import Stopped, run_batch
from shared.broker.port import (
    DEFAULT_CONSUME,
    BatchHandler,
    Broker,
    ConsumeOptions,
    Delivery,
    Exchange,
    Outgoing,
    PublishError,
    Queue,
)
from shared.messages import DEAD_EXCHANGE

DELIVERY_LIMIT = 10


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])


@dataclass
class _Message:
    outgoing: Outgoing
    deliveries: int = 0


@dataclass
class _Queue:
    spec: Queue
    ready: deque = field(default_factory=deque)
    unacked: dict = field(default_factory=dict)


class MemoryBroker(Broker):
    def __init__(self):
        self._exchanges: dict[str, Exchange] = {}
        self._queues: dict[str, _Queue] = {}
        self._cond = threading.Condition()
        self._tags = itertools.count(1)

    def declare(self, exchanges: Sequence[Exchange], queues: Sequence[Queue]) -> None:
        with self._cond:
            for ex in exchanges:
                self._exchanges.setdefault(ex.name, ex)
            for q in queues:
                self._queues.setdefault(q.name, _Queue(q))

    def _route(self, m: Outgoing) -> list[_Queue]:
        exchange = self._exchanges.get(m.exchange)
        if exchange is None:
            raise PublishError(f"no exchange {m.exchange!r}")
        out = []
        for q in self._queues.values():
            for ex_name, key in q.spec.bindings:
                if ex_name != m.exchange:
                    continue
                if (exchange.type == "fanout" or (exchange.type == "direct" and key == m.routing_key)
                        or (exchange.type == "topic" and topic_matches(key, m.routing_key))):
                    out.append(q)
                    break
        return out

    def publish(self, messages: Sequence[Outgoing]) -> None:
        with self._cond:
            routed = [(m, self._route(m)) for m in messages]
            for m, queues in routed:
                if not queues:
                    raise PublishError(f"unroutable: {m.exchange} {m.routing_key}")
            for m, queues in routed:
                for q in queues:
                    q.ready.append(_Message(m))
            self._cond.notify_all()

    def _take(self, q: _Queue, limit: int) -> list[Delivery]:
        out = []
        while q.ready and len(out) < limit:
            msg = q.ready.popleft()
            msg.deliveries += 1
            if msg.deliveries > DELIVERY_LIMIT and q.spec.dead_letter:
                headers = {**msg.outgoing.headers, "x-wcml-reason": "delivery limit exceeded",
                           "x-wcml-queue": q.spec.name}
                dead = Outgoing(DEAD_EXCHANGE, q.spec.name, msg.outgoing.body, headers)
                for dq in self._route(dead):
                    dq.ready.append(_Message(dead))
                continue
            tag = next(self._tags)
            q.unacked[tag] = msg
            out.append(Delivery(body=msg.outgoing.body, routing_key=msg.outgoing.routing_key,
                                exchange=msg.outgoing.exchange, headers=dict(msg.outgoing.headers),
                                redelivered=msg.deliveries > 1, tag=(q.spec.name, tag),
                                message_id=msg.outgoing.message_id))
        return out

    def consume(self, queue: str, handler: BatchHandler, stop: threading.Event,
                options: ConsumeOptions = DEFAULT_CONSUME) -> None:
        q = self._queues[queue]
        busy = False  # messages arrived while the last batch was handled (ConsumeOptions.max_wait)
        while not stop.is_set():
            with self._cond:
                if not q.ready:
                    busy = False
                    self._cond.wait(0.1)
                    continue
                deadline = time.monotonic() + (options.max_wait if busy else 0)
                while len(q.ready) < options.max_batch and time.monotonic() < deadline:
                    held = len(q.ready)
                    self._cond.wait(min(options.arrival_gap, max(0.0, deadline - time.monotonic())))
                    if len(q.ready) == held:
                        break  # a gap: the batch is what came
                batch = self._take(q, options.max_batch)
            if not batch:
                continue
            try:
                run_batch(batch, handler, queue, self.publish, time.sleep, stop)
            except Stopped:
                self.settle(batch, requeue=True)
                return
            self.settle(batch, requeue=False)
            busy = True  # until a look finds the queue empty

    def get(self, queue: str, limit: int) -> list[Delivery]:
        with self._cond:
            return self._take(self._queues[queue], limit)

    def settle(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        with self._cond:
            for d in reversed(deliveries):
                name, tag = d.tag
                q = self._queues[name]
                msg = q.unacked.pop(tag, None)
                if msg is not None and requeue:
                    q.ready.appendleft(msg)
            self._cond.notify_all()

    def purge(self, queue: str) -> int:
        with self._cond:
            q = self._queues[queue]
            n = len(q.ready)
            q.ready.clear()
            return n

    def queue_depth(self, queue: str) -> int:
        with self._cond:
            return len(self._queues[queue].ready)
