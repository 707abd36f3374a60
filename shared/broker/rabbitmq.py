"""RabbitMQ adapter (pika): durable quorum queues, publisher confirms, manual acks.

pika connections are not thread-safe, so each thread gets its own. Every
connection failure is retried with capped exponential backoff, and the topology
is declared again on each new connection. Given the nodes of a cluster (a URL list,
``shared.broker.urls``), each connection tries them all, starting from the last one that
answered and moving past one whose connection broke, so a dead node costs no timeout.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence

import pika
import pika.exceptions

from shared.broker.batches import Stopped, run_batch
from shared.broker.port import (
    DEFAULT_CONSUME,
    BatchHandler,
    Broker,
    BrokerRefused,
    BrokerUnavailable,
    ConsumeOptions,
    Delivery,
    Exchange,
    Outgoing,
    PublishError,
    Queue,
)
from shared.broker.urls import redacted, split_broker_urls
from shared.messages import DEAD_EXCHANGE

log = logging.getLogger(__name__)

DELIVERY_LIMIT = 10


class ConsumerGone(pika.exceptions.AMQPError):
    """The broker closed a consumer's channel or cancelled it while its connection stays open."""


CONNECTION_ERRORS = (pika.exceptions.AMQPError, OSError)


def queue_arguments(queue: Queue) -> dict:
    """No ``x-quorum-initial-group-size``: RabbitMQ places 3 replicas (every node of a smaller
    cluster), and the argument could never change afterwards (a redeclaration without it, or with
    another value, is refused: PRECONDITION_FAILED)."""
    args = {"x-queue-type": "quorum"}
    if queue.single_consumer:
        args["x-single-active-consumer"] = True
    if queue.dead_letter:
        args.update({
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        })
    return args


def node_parameters(url: str) -> pika.URLParameters:
    """One node's connection parameters: one attempt each (the broker's own loop retries, across
    every node) and short socket timeouts where the URL sets none."""
    params = pika.URLParameters(url)
    params.heartbeat = params.heartbeat or 30
    params.blocked_connection_timeout = 60
    query = url.partition("?")[2]
    if "connection_attempts" not in query:
        params.connection_attempts = 1
    if "socket_timeout" not in query:
        params.socket_timeout = 3.0
    if "stack_timeout" not in query:
        params.stack_timeout = 10.0
    return params


class RabbitBroker(Broker):
    def __init__(self, url: str, *, connect_attempts: int | None = None, max_backoff: float = 5.0):
        urls = split_broker_urls(url)
        self._nodes = [node_parameters(u) for u in urls]
        self._names = [redacted(u) for u in urls]
        self._first = random.randrange(len(self._nodes))  # spread a cluster's clients over its nodes
        self._attempts = connect_attempts
        self._max_backoff = max_backoff
        self._local = threading.local()
        self._declared: tuple[tuple[Exchange, ...], tuple[Queue, ...]] = ((), ())
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------
    def _connect(self, attempts: int | None = None) -> pika.BlockingConnection:
        attempts = attempts or self._attempts
        delay, attempt = 0.2, 0
        while True:
            attempt += 1
            try:
                connection = self._open()
                self._declare_on(connection)
                return connection
            except CONNECTION_ERRORS as exc:
                if attempts is not None and attempt >= attempts:
                    raise
                log.warning("RabbitMQ unreachable at %s (%s), retrying in %.1fs", ", ".join(self._names),
                            type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, self._max_backoff)

    def _open(self) -> pika.BlockingConnection:
        """A connection to the first node that answers, from the preferred one on, in list order."""
        first = self._first
        order = self._nodes[first:] + self._nodes[:first]
        try:
            connection = pika.BlockingConnection(order if len(order) > 1 else order[0])
        except ValueError as exc:
            # pika's connector raises ValueError when the socket it just connected is gone before it
            # looks at the peer (a broker stopping or starting): that is a connection error too
            raise pika.exceptions.AMQPConnectionError(f"connection dropped while opening: {exc}") from None
        self._first = self._node_of(connection)
        return connection

    def _node_of(self, connection: pika.BlockingConnection) -> int:
        used = connection._impl.params  # a copy of the parameters that answered
        for i, node in enumerate(self._nodes):
            if (node.host, node.port) == (used.host, used.port):
                return i
        return self._first

    def _lost(self, connection: pika.BlockingConnection | None) -> None:
        """A connection broke: the next one starts at the node after its node, in case that is down."""
        if connection is not None and len(self._nodes) > 1:
            broken = self._node_of(connection)
            if broken == self._first:
                self._first = (broken + 1) % len(self._nodes)

    def _publisher(self) -> _ConfirmingChannel:
        publisher = getattr(self._local, "publisher", None)
        if publisher is None or not publisher.usable():
            self._drop_publisher()
            connection = self._connect(attempts=1)  # publishers back off themselves
            self._local.connection = connection
            self._local.publisher = publisher = _ConfirmingChannel(connection)
        return publisher

    def _drop_publisher(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.publisher = None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                pass

    # -- topology ----------------------------------------------------------
    def declare(self, exchanges: Sequence[Exchange], queues: Sequence[Queue]) -> None:
        with self._lock:
            known_ex, known_q = self._declared
            self._declared = (
                known_ex + tuple(e for e in exchanges if e not in known_ex),
                known_q + tuple(q for q in queues if q not in known_q),
            )
        try:
            connection = self._connect(attempts=1)  # declares everything known so far
        except CONNECTION_ERRORS as exc:
            # Never block a service's start on the broker: every new connection declares it all.
            log.warning("RabbitMQ unreachable (%s): topology will be declared on connecting",
                        type(exc).__name__)
            return
        connection.close()

    def _declare_on(self, connection: pika.BlockingConnection) -> None:
        exchanges, queues = self._declared
        if not exchanges and not queues:
            return
        channel = connection.channel()
        for ex in exchanges:
            channel.exchange_declare(ex.name, ex.type, durable=True)
        for q in queues:
            channel.queue_declare(q.name, durable=True, arguments=queue_arguments(q))
            for exchange, key in q.bindings:
                channel.queue_bind(q.name, exchange, routing_key=key)
        channel.close()

    # -- publishing --------------------------------------------------------
    def publish(self, messages: Sequence[Outgoing]) -> None:
        for attempt in range(3):
            try:
                self._publisher().publish(messages)
                return
            except CONNECTION_ERRORS as exc:
                self._lost(getattr(self._local, "connection", None))
                self._drop_publisher()
                if attempt == 2:
                    raise BrokerUnavailable(f"publish failed: {type(exc).__name__}") from exc
                time.sleep(0.1 * (attempt + 1))

    # -- consuming ---------------------------------------------------------
    def consume(self, queue: str, handler: BatchHandler, stop: threading.Event,
                options: ConsumeOptions = DEFAULT_CONSUME) -> None:
        while not stop.is_set():
            connection = None
            try:
                connection = self._connect()
                self._consume_on(connection, queue, handler, stop, options)
            except CONNECTION_ERRORS as exc:
                if stop.is_set():
                    break
                log.warning("consumer of %s lost its connection (%s); reconnecting", queue,
                            type(exc).__name__)
                self._lost(connection)
                self._drop_publisher()
                time.sleep(0.5)
            finally:
                if connection is not None and connection.is_open:
                    try:
                        connection.close()
                    except CONNECTION_ERRORS:
                        pass

    def _consume_on(self, connection, queue, handler, stop, options) -> None:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=options.prefetch)
        buffer: list[Delivery] = []

        def on_message(ch, method, props, body):
            buffer.append(_delivery(method, props, body))

        cancelled = []
        channel.add_on_cancel_callback(cancelled.append)  # e.g. the queue was deleted
        tag = channel.basic_consume(queue, on_message)
        first_at, busy = None, False
        while not stop.is_set():
            held = len(buffer)
            connection.process_data_events(time_limit=(options.arrival_gap if busy else 0) if buffer else 0.2)
            if channel.is_closed or cancelled:
                # Not a connection error, so nothing else would end this loop: a consumer that
                # silently stops consuming. Start over on a new connection (the broker requeues).
                raise ConsumerGone(f"the broker {'closed the channel' if channel.is_closed else 'cancelled'} "
                                   f"the consumer of {queue}")
            if not buffer:
                continue
            first_at = first_at or time.monotonic()
            arriving = len(buffer) > held  # else a gap: the batch is what came
            if busy and arriving and len(buffer) < options.max_batch \
                    and time.monotonic() - first_at < options.max_wait:
                continue
            batch, buffer[:] = list(buffer), []
            first_at = None
            try:
                run_batch(batch, handler, queue, self.publish, connection.sleep, stop)
            except Stopped:
                channel.basic_nack(batch[-1].tag, multiple=True, requeue=True)
                break
            channel.basic_ack(batch[-1].tag, multiple=True)
            connection.process_data_events(time_limit=0)  # what arrived while the batch was handled
            busy = bool(buffer)
        if buffer:
            channel.basic_nack(buffer[-1].tag, multiple=True, requeue=True)
        channel.basic_cancel(tag)

    # -- inspection (dead letters, tests) ----------------------------------
    def _inspector(self):
        """One channel per thread for get/settle, kept open: closing a channel right after its acks
        can return quorum-queue messages before the acks are applied (seen as redeliveries)."""
        channel = getattr(self._local, "inspector", None)
        if channel is None or channel.is_closed or channel.connection.is_closed:
            channel = self._connect().channel()
            self._local.inspector = channel
        return channel

    def get(self, queue: str, limit: int) -> list[Delivery]:
        channel = self._inspector()
        out = []
        for _ in range(limit):
            method, props, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            out.append(_delivery(method, props, body))
        return out

    def settle(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        if not deliveries:
            return
        channel = self._inspector()
        for d in deliveries:
            if requeue:
                channel.basic_nack(d.tag, requeue=True)
            else:
                channel.basic_ack(d.tag)

    def purge(self, queue: str) -> int:
        connection = self._connect()
        try:
            return connection.channel().queue_purge(queue).method.message_count
        finally:
            connection.close()

    def queue_depth(self, queue: str) -> int:
        connection = self._connect()
        try:
            return connection.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()

    def depth_of(self, queues: Sequence[str]) -> int:
        """On a connection this thread keeps for it (not the inspector's: there a depth could be read
        before that channel's own settlements landed). One each time cost a replay a fifth of its CPU,
        and RabbitMQ more: a connection and the topology's declarations per queue per page."""
        channel = getattr(self._local, "gauge", None)
        if channel is None or channel.is_closed or channel.connection.is_closed:
            channel = self._local.gauge = self._connect().channel()
        try:
            return sum(channel.queue_declare(q, passive=True).method.message_count for q in queues)
        except CONNECTION_ERRORS:
            self._close_channel("gauge")  # a missing queue closes the channel: the next call opens another
            raise

    def close(self) -> None:
        self._drop_publisher()
        for name in ("inspector", "gauge"):
            self._close_channel(name)

    def _close_channel(self, name: str) -> None:
        """Close this thread's kept channel ``name`` and its connection."""
        channel = getattr(self._local, name, None)
        setattr(self._local, name, None)
        if channel is not None and channel.connection.is_open:
            try:
                channel.connection.close()
            except CONNECTION_ERRORS:
                pass


def _delivery(method, props, body) -> Delivery:
    return Delivery(body=body, routing_key=method.routing_key, exchange=method.exchange,
                    headers=dict(props.headers or {}), redelivered=method.redelivered,
                    tag=method.delivery_tag, message_id=props.message_id)


class _ConfirmingChannel:
    """Publish a batch, then wait once for all its confirms (asynchronous confirms, bounded window).

    A blocking channel in confirm mode waits for each message in turn; this keeps up to WINDOW
    messages in flight on pika's underlying channel instead.

    The confirms arrive as callbacks on that underlying channel, which the blocking connection does not
    know about: ``process_data_events(time_limit=…)`` would go on polling until its time limit, so a
    publish would take that long however soon RabbitMQ confirmed it. When the wait is over, the callback
    asks the connection to return (``add_callback_threadsafe``, pika's way to end its loop from inside
    it).
    """

    WINDOW = 4096
    TIMEOUT = 30.0
    POLL = 0.01  # the longest one ``process_data_events`` call of a wait may take

    def __init__(self, connection: pika.BlockingConnection):
        self.connection = connection
        self.channel = connection.channel()
        self.impl = self.channel._impl  # the asynchronous channel under the blocking facade
        self.next_tag = 0
        self.floor = 1
        self.pending: set[int] = set()
        self.waiting_for = None  # what ``_wait`` waits for: the callbacks end its loop once it holds
        self.nacked = 0
        self.returned = 0
        selected = []
        self.impl.add_on_return_callback(self._on_return)
        self.impl.confirm_delivery(ack_nack_callback=self._on_confirm,
                                   callback=lambda frame: (selected.append(frame), self._settled()))
        self._wait(lambda: bool(selected))

    def usable(self) -> bool:
        return self.connection.is_open and self.channel.is_open

    def _on_confirm(self, frame) -> None:
        method = frame.method
        if method.multiple:
            for tag in range(self.floor, method.delivery_tag + 1):
                if tag in self.pending:
                    self.pending.discard(tag)
                    self.nacked += isinstance(method, pika.spec.Basic.Nack)
            self.floor = max(self.floor, method.delivery_tag + 1)
        elif method.delivery_tag in self.pending:
            self.pending.discard(method.delivery_tag)
            self.nacked += isinstance(method, pika.spec.Basic.Nack)
        self._settled()

    def _on_return(self, _channel, _method, _properties, _body) -> None:
        self.returned += 1  # a mandatory message no queue took; its ack follows

    def _settled(self) -> None:
        """After a callback: if the wait is over, end ``process_data_events`` now, not at its limit."""
        if self.waiting_for is not None and self.waiting_for():
            self.waiting_for = None
            self.connection.add_callback_threadsafe(_nothing)

    def _wait(self, done) -> None:
        deadline = time.monotonic() + self.TIMEOUT
        self.waiting_for = done
        try:
            while not done():
                if time.monotonic() > deadline:
                    raise pika.exceptions.AMQPConnectionError("no publisher confirm within 30 s")
                self.connection.process_data_events(time_limit=self.POLL)
        finally:
            self.waiting_for = None

    def publish(self, messages: Sequence[Outgoing]) -> None:
        self.nacked = self.returned = 0
        for m in messages:
            if len(self.pending) >= self.WINDOW:
                self._wait(lambda: len(self.pending) < self.WINDOW // 2)
            self.impl.basic_publish(
                m.exchange, m.routing_key, m.body, mandatory=True,
                properties=pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                                headers=m.headers or None, message_id=m.message_id))
            self.next_tag += 1
            self.pending.add(self.next_tag)
        self._wait(lambda: not self.pending)
        if self.returned:  # no queue is bound for it: the topology's fault, retrying cannot help
            raise PublishError(f"broker refused {self.returned} unroutable and {self.nacked} nacked "
                               f"of {len(messages)} message(s)")
        if self.nacked:
            raise BrokerRefused(f"broker nacked {self.nacked} of {len(messages)} message(s)")


def _nothing() -> None:
    """Scheduled only to make the blocking connection return from its loop."""
