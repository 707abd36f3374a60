"""The broker port: what services may ask of a message broker.

Two adapters implement it: ``rabbitmq.RabbitBroker`` (pika) and
``memory.MemoryBroker`` (the embedded mode). Services see only this module.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import TransientError


class PublishError(Exception):
    """The broker did not confirm a message (nacked, unroutable, or the connection broke)."""


class BrokerUnavailable(PublishError, TransientError):
    """No connection to the broker: retry later; consumers retry the batch in place."""


class BrokerRefused(PublishError, TransientError):
    """The broker nacked a message: a quorum queue between leaders (a node stopping) or full
    (``reject-publish``). Its own state, not the message's: consumers retry the batch in place
    (a message nacked there would otherwise be dead-lettered as if it were poison)."""


@dataclass(frozen=True)
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None


@dataclass
class Delivery:
    body: bytes
    routing_key: str
    exchange: str
    headers: dict[str, Any]
    redelivered: bool
    tag: Any
    message_id: str | None = None

    def carrying(self, body: bytes) -> Delivery:
        """This delivery with ``body`` instead: one item of a batch, dead-lettered without the rest."""
        return self if body is self.body else replace(self, body=body)


@dataclass(frozen=True)
class Rejection:
    """A delivery the handler refuses for good: it goes to ``wcml.dead`` with ``reason``."""

    delivery: Delivery
    reason: str


BatchHandler = Callable[[list[Delivery]], Sequence[Rejection]]


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str


@dataclass(frozen=True)
class Queue:
    name: str
    bindings: tuple[tuple[str, str], ...]  # (exchange, routing key)
    dead_letter: bool = True  # rejected / over-delivered messages go to wcml.dead
    single_consumer: bool = False  # one consumer at a time receives (RabbitMQ's single active consumer)


@dataclass(frozen=True)
class ConsumeOptions:
    prefetch: int = 256
    max_batch: int = 64
    # Seconds a partial batch may wait for more, only while the consumer is busy (messages arrived
    # while it handled the last batch) and only while they keep coming (none for ``arrival_gap``: the
    # batch is what came). An idle consumer handles a lone message at once: a wait in each hop would
    # add to every webhook's latency and save no CPU. A busy one fills its batches (docs/benchmarks.md).
    max_wait: float = 0.005
    arrival_gap: float = 0.001  # seconds without a new message that end a busy consumer's wait


DEFAULT_CONSUME = ConsumeOptions()


class Broker(ABC):
    @abstractmethod
    def declare(self, exchanges: Sequence[Exchange], queues: Sequence[Queue]) -> None:
        """Declare durable exchanges and queues; safe to repeat."""

    @abstractmethod
    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Return once every message is confirmed by the broker; raise PublishError otherwise."""

    @abstractmethod
    def consume(self, queue: str, handler: BatchHandler, stop: threading.Event,
                options: ConsumeOptions = DEFAULT_CONSUME) -> None:
        """Deliver batches to ``handler`` until ``stop`` is set; ack after it returns."""

    @abstractmethod
    def purge(self, queue: str) -> int:
        """Drop every ready message of ``queue``; return how many."""

    @abstractmethod
    def get(self, queue: str, limit: int) -> list[Delivery]:
        """Fetch up to ``limit`` ready messages without a consumer (ack with ``settle``)."""

    @abstractmethod
    def settle(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        """Ack (requeue=False) or return to the queue (requeue=True) what ``get`` fetched."""

    @abstractmethod
    def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue``."""

    def depth_of(self, queues: Sequence[str]) -> int:
        """Messages ready in these queues in all: an advisory figure asked often (a replay's flow
        control, every page), which an adapter may answer on a connection it keeps for it."""
        return sum(self.queue_depth(q) for q in queues)

    def close(self) -> None:  # noqa: B027 - optional for adapters
        pass
