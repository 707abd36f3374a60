"""When a consumer waits to fill a batch, on every adapter: an idle consumer handles a lone message at
once; a busy one (messages arrived while it handled the last batch) waits for more while they keep
coming, up to ``max_wait``."""

import threading
import time

import pytest

from shared import topology
from shared.broker import ConsumeOptions, Outgoing
from shared.broker.memory import MemoryBroker
from shared.broker.rabbitmq import RabbitBroker
from shared.broker.sqlite import SQLiteBroker
from shared.messages import TASKS_EXCHANGE

QUEUE, WAIT = "tasks.issuetype", 3.0


@pytest.fixture(params=["memory", "sqlite", "rabbitmq"])
def broker(request, tmp_path):
    if request.param == "rabbitmq":
        b = RabbitBroker(request.getfixturevalue("amqp_url"))
    else:
        b = MemoryBroker() if request.param == "memory" else SQLiteBroker(tmp_path / "queue.db")
    topology.declare(b, ["issuetype"])
    yield b
    if request.param == "rabbitmq":
        b.close()


def publish(broker, *bodies: bytes) -> None:
    broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", body) for body in bodies])


def consume(broker, handler, until: threading.Event, arrival_gap: float = 0.001) -> None:
    stop = threading.Event()
    options = ConsumeOptions(max_batch=16, max_wait=WAIT, arrival_gap=arrival_gap)
    thread = threading.Thread(target=broker.consume, args=(QUEUE, handler, stop, options), daemon=True)
    thread.start()
    try:
        assert until.wait(4 * WAIT), "the consumer never got there"
    finally:
        stop.set()
        thread.join(10)


def test_an_idle_consumer_handles_a_lone_message_without_waiting_to_fill_a_batch(broker):
    handled, warm, lone, sent = [], threading.Event(), threading.Event(), []

    def handler(batch):
        handled.append((time.monotonic(), [d.body for d in batch]))
        (warm if handled[-1][1] == [b"warm-up"] else lone).set()
        return []

    def publish_lone():  # well after the warm-up batch: the consumer is idle by then
        warm.wait(20)
        time.sleep(0.5)
        sent.append(time.monotonic())
        publish(broker, b"lone")

    publish(broker, b"warm-up")
    threading.Thread(target=publish_lone, daemon=True).start()
    consume(broker, handler, until=lone)
    [(_, first), (at, second)] = handled
    assert (first, second) == ([b"warm-up"], [b"lone"])
    assert at - sent[0] < WAIT / 2  # not held back for the batch's wait (3 s)


def test_a_busy_consumer_waits_while_messages_keep_coming(broker):
    batches, done = [], threading.Event()

    def stream():  # a message every 50 ms, then one after a gap longer than ``arrival_gap``
        for i in range(5):
            time.sleep(0.05)
            publish(broker, f"later-{i}".encode())
        time.sleep(1.5)
        publish(broker, b"after a gap")

    def handler(batch):
        batches.append([d.body for d in batch])
        if batches[-1] == [b"first"]:
            publish(broker, *(f"now-{i}".encode() for i in range(5)))  # arrives while it is handled
            threading.Thread(target=stream, daemon=True).start()
        if sum(map(len, batches)) == 12:
            done.set()
        return []

    publish(broker, b"first")
    consume(broker, handler, until=done, arrival_gap=0.5)
    assert batches[0] == [b"first"]
    assert sorted(batches[1]) == sorted([f"now-{i}".encode() for i in range(5)]
                                        + [f"later-{i}".encode() for i in range(5)])
    assert batches[2:] == [[b"after a gap"]]
