"""The RabbitMQ adapter on a real broker: confirms, batched acks, dead letters, delivery limit."""

import threading
import time

import pika
import pytest

from shared import topology
from shared.broker import ConsumeOptions, Outgoing, PublishError, Rejection
from shared.broker.port import BrokerRefused
from shared.broker.rabbitmq import DELIVERY_LIMIT, RabbitBroker, _ConfirmingChannel
from shared.errors import is_transient
from shared.messages import EVENTS_EXCHANGE, TASKS_EXCHANGE
from tests.harness import unique
from tests.waiting import eventually


@pytest.fixture
def broker(amqp_url):
    b = RabbitBroker(amqp_url)
    topology.declare(b, ["issuetype"])
    yield b
    b.close()


def consume_until(broker, queue, handler, count, options=None):
    options = options or ConsumeOptions(max_batch=16, max_wait=0.02)
    stop, seen = threading.Event(), []

    def wrapped(batch):
        out = handler(batch)
        seen.extend(batch)
        if len(seen) >= count:
            stop.set()
        return out

    thread = threading.Thread(target=broker.consume, args=(queue, wrapped, stop, options))
    thread.start()
    thread.join(20)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    return seen


def test_queues_are_durable_quorum_queues_with_a_delivery_limit(amqp_url, broker):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for name in ("events.dispatcher", "tasks.issuetype", "results.store", "dead"):
        channel.queue_declare(name, passive=True)  # raises if missing
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="PRECONDITION_FAILED"):
        channel.queue_declare("tasks.issuetype", durable=True, arguments={"x-queue-type": "classic"})
    connection.close()
    topology.declare(broker, ["issuetype"])  # declaring again is harmless


def test_a_publish_returns_once_confirmed_not_when_its_poll_runs_out(broker, monkeypatch):
    """The confirm is a callback pika's blocking loop does not know of: unless it ends the loop, each
    publish waited out the whole poll (10 ms, three times per webhook). With a poll of 30 s, a publish
    that waits for it cannot return within the assertion's 10 s."""
    monkeypatch.setattr(_ConfirmingChannel, "POLL", 30.0)
    for i in range(3):  # the channel's first publish, and the ones after it
        started = time.monotonic()
        broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"{}", message_id=f"m{i}")])
        assert time.monotonic() - started < 10


def test_publish_consume_ack_in_batches(broker):
    broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", str(i).encode(), message_id=str(i))
                    for i in range(50)])
    seen = consume_until(broker, "tasks.issuetype", lambda batch: [], 50)
    assert sorted(int(d.body) for d in seen) == list(range(50))
    assert len(seen) == 50  # each message handled once
    assert broker.queue_depth("tasks.issuetype") == 0


def test_unroutable_publish_raises(broker):
    with pytest.raises(PublishError) as refused:
        broker.publish([Outgoing(TASKS_EXCHANGE, "no-such-task", b"x")])
    assert not is_transient(refused.value)  # the topology's fault: retrying cannot help


def test_a_nacked_publish_is_transient_so_consumers_retry_it_in_place(broker, amqp_url):
    # A full quorum queue that refuses more (reject-publish) nacks, as one between leaders does.
    queue = unique("full")
    admin = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = admin.channel()
    channel.queue_declare(queue, durable=True, arguments={
        "x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish"})
    channel.queue_bind(queue, "amq.direct", routing_key=queue)
    try:
        refused = None
        for i in range(5):  # a quorum queue applies its limit a message or so late
            try:
                broker.publish([Outgoing("amq.direct", queue, str(i).encode())])
            except PublishError as exc:
                refused = exc
                break
        assert isinstance(refused, BrokerRefused) and "nacked 1 of 1" in str(refused), refused
        assert is_transient(refused)
    finally:
        channel.queue_delete(queue)
        admin.close()


def test_rejected_and_crashing_messages_are_dead_lettered_alone_with_reasons(broker):
    broker.publish([Outgoing(EVENTS_EXCHANGE, "github.issues.opened", str(i).encode()) for i in range(10)])

    def handler(batch):
        if any(d.body == b"7" for d in batch):
            raise ValueError("cannot handle seven")
        return [Rejection(d, "three is refused") for d in batch if d.body == b"3"]

    consume_until(broker, "events.dispatcher", handler, 9, ConsumeOptions(max_batch=10, max_wait=0.2))
    assert broker.queue_depth("events.dispatcher") == 0
    dead = broker.get("dead", 10)
    reasons = {d.body: d.headers["x-wcml-reason"] for d in dead}
    broker.settle(dead, requeue=False)
    assert reasons.keys() == {b"3", b"7"}
    assert reasons[b"3"] == "three is refused" and "cannot handle seven" in reasons[b"7"]


def test_a_message_requeued_past_the_delivery_limit_lands_in_dead(broker):
    broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"poison")])
    for _ in range(DELIVERY_LIMIT + 2):
        got = broker.get("tasks.issuetype", 1)
        if not got:
            break
        broker.settle(got, requeue=True)
    assert broker.queue_depth("tasks.issuetype") == 0
    [dead] = broker.get("dead", 1)
    assert dead.body == b"poison" and dead.headers["x-death"][0]["reason"] == "delivery_limit"
    broker.settle([dead], requeue=False)


def test_consumer_and_publisher_reconnect_after_a_broker_restart(amqp_url, broker):
    from tests.harness import RabbitControl

    rabbit = RabbitControl(amqp_url)
    handled, stop = set(), threading.Event()

    def handler(batch):
        handled.update(d.body for d in batch)
        return []

    thread = threading.Thread(target=broker.consume,
                              args=("tasks.issuetype", handler, stop, ConsumeOptions()))
    thread.start()
    try:
        broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", f"a{i}".encode()) for i in range(50)])
        rabbit.stop()
        with pytest.raises(PublishError):
            broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"while-down")])
        rabbit.start()
        broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", f"b{i}".encode()) for i in range(50)])
        eventually(lambda: len(handled) >= 100, timeout=20,
                   message=lambda: f"100 messages handled after the restart ({len(handled)} so far)")
    finally:
        stop.set()
        thread.join(10)
    expected = {f"a{i}".encode() for i in range(50)} | {f"b{i}".encode() for i in range(50)}
    assert expected <= handled


def test_a_consumer_the_broker_cancels_starts_again_on_a_new_connection(amqp_url, broker):
    """Deleting its queue cancels the consumer while its connection stays open (as a broker may do to
    a consumer of a quorum queue it lost): the consumer reconnects, which declares the queue again, and
    takes what comes next instead of idling on a dead subscription."""
    stop, seen = threading.Event(), []
    thread = threading.Thread(target=broker.consume, args=(
        "tasks.issuetype", lambda batch: seen.extend(d.body for d in batch) or [], stop,
        ConsumeOptions(max_batch=16, max_wait=0.02)))
    thread.start()
    try:
        broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"before")])
        eventually(lambda: b"before" in seen, timeout=10, message="the first message consumed")
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().queue_delete("tasks.issuetype")
        connection.close()

        def routed() -> bool:
            """the queue declared again (until then the publish is unroutable)"""
            broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"after")])
            return True

        eventually(routed, timeout=20, interval=0.2)
        eventually(lambda: b"after" in seen, timeout=20, message="the consumer back on the queue")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_a_socket_dropped_while_the_connection_opens_is_retried_not_fatal(amqp_url, monkeypatch):
    """Seen in the broker-outage fault test: RabbitMQ, starting or stopping, accepts a TCP connection
    and drops it before pika looks at the peer, and pika raises ValueError ("Expected connected
    socket"). That is one more failed attempt to connect: a consumer keeps trying, it does not die."""
    real, calls = pika.BlockingConnection, []

    def dropped_once(parameters):
        calls.append(parameters)
        if len(calls) == 1:
            raise ValueError("Expected connected socket, but getpeername() failed: error=OSError(107)")
        return real(parameters)

    monkeypatch.setattr(pika, "BlockingConnection", dropped_once)
    broker = RabbitBroker(amqp_url)
    try:
        topology.declare(broker, ["issuetype"])
        broker.publish([Outgoing(EVENTS_EXCHANGE, "github.issues.opened", b"{}", message_id="m-1")])
        assert len(consume_until(broker, "events.dispatcher", lambda batch: [], 1)) == 1
        assert len(calls) >= 2
    finally:
        broker.close()


def test_depth_of_answers_on_one_kept_connection(broker):
    """A replay asks every page: one connection serves every answer, and a missing queue costs only
    that answer (its error), not the next."""
    broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"{}", message_id=str(i)) for i in range(3)])
    queues = ["tasks.issuetype", "events.dispatcher"]
    eventually(lambda: broker.depth_of(queues) == 3, timeout=10, message="three messages ready")
    connection = broker._local.gauge.connection
    assert broker.depth_of(queues) == 3 and broker._local.gauge.connection is connection
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
        broker.depth_of(["no.such.queue"])
    assert broker.depth_of(queues) == 3
