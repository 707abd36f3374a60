"""The in-process broker is a product feature (embedded mode): routing, acks, dead letters."""


import pytest

from shared import topology
from shared.broker import ConsumeOptions, Outgoing, PublishError, Rejection, dead_letters
from shared.broker.memory import MemoryBroker, topic_matches
from shared.errors import TransientError
from shared.messages import (
    EVENTS_EXCHANGE,
    TASKS_EXCHANGE,
    IssueSnapshot,
    TaskMessage,
    decode,
    decode_each,
    encode_batch,
)
from tests.builders import consume_until


@pytest.mark.parametrize("pattern, key, ok", [
    ("github.#", "github.issues.opened", True), ("github.#", "github", True),
    ("github.*", "github.issues.opened", False), ("github.*.opened", "github.issues.opened", True),
    ("#", "anything.at.all", True), ("a.#.z", "a.z", True), ("a.#.z", "a.b.c.z", True), ("a.b", "a.c", False),
])
def test_topic_matching(pattern, key, ok):
    assert topic_matches(pattern, key) is ok


def broker():
    b = MemoryBroker()
    topology.declare(b, ["issuetype"])
    return b


def test_direct_routing_and_unroutable():
    b = broker()
    b.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"1")])
    assert b.queue_depth("tasks.issuetype") == 1
    with pytest.raises(PublishError):
        b.publish([Outgoing(TASKS_EXCHANGE, "unknown-task", b"1")])


def test_rejections_go_to_the_dead_queue_with_reason():
    b = broker()
    b.publish([Outgoing(EVENTS_EXCHANGE, "github.issues.opened", str(i).encode()) for i in range(4)])
    reject_2 = lambda batch: [Rejection(d, "bad") for d in batch if d.body == b"2"]  # noqa: E731
    consume_until(b, "events.dispatcher", reject_2, 4)
    assert b.queue_depth("events.dispatcher") == 0
    [dead] = b.get("dead", 10)
    assert dead.body == b"2" and dead.headers["x-wcml-reason"] == "bad"
    assert dead.headers["x-wcml-queue"] == "events.dispatcher"


def test_a_crashing_message_is_isolated_and_its_neighbours_pass():
    b = broker()
    b.publish([Outgoing(EVENTS_EXCHANGE, "github.x", str(i).encode()) for i in range(8)])
    handled = []

    def handler(batch):
        if any(d.body == b"5" for d in batch):
            raise KeyError("boom")
        handled.extend(d.body for d in batch)
        return []

    consume_until(b, "events.dispatcher", handler, 8, ConsumeOptions(max_batch=8, max_wait=0.05))
    assert sorted(handled) == [str(i).encode() for i in range(8) if i != 5]
    [dead] = b.get("dead", 10)
    assert dead.body == b"5" and "KeyError" in dead.headers["x-wcml-reason"]


def test_transient_failures_are_retried_in_place_not_dead_lettered():
    b = broker()
    b.publish([Outgoing(EVENTS_EXCHANGE, "github.x", b"1")])
    calls = []

    def handler(batch):
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("database down")
        return []

    consume_until(b, "events.dispatcher", handler, 3)
    assert len(calls) == 3 and b.queue_depth("dead") == 0


def test_requeued_messages_hit_the_delivery_limit():
    b = broker()
    b.publish([Outgoing(EVENTS_EXCHANGE, "github.x", b"loop")])
    for _ in range(20):
        got = b.get("events.dispatcher", 1)
        if not got:
            break
        b.settle(got, requeue=True)
    assert b.queue_depth("events.dispatcher") == 0
    [dead] = b.get("dead", 1)
    assert dead.headers["x-wcml-reason"] == "delivery limit exceeded"


def test_a_crashing_item_of_a_batch_body_is_dead_lettered_alone_and_requeued_alone():
    """One body of 50 task messages: the handler crashes on any body holding item 17; the other 49 are
    handled, item 17 is dead-lettered by itself, and requeued it fails once more and goes back."""
    b = broker()
    tasks = [TaskMessage(task="issuetype", delivery_id=f"d{i}", position=i, event="issues", action="opened",
                         issue=IssueSnapshot("o/r", i, "", "t", "b", None)) for i in range(50)]
    b.publish([Outgoing(TASKS_EXCHANGE, "issuetype", encode_batch(tasks))])
    handled = []

    def handler(batch):
        items = [i.message for d in batch for i in decode_each(d.body, TaskMessage)]
        if any(t.delivery_id == "d17" for t in items):
            raise KeyError("boom")
        handled.extend(t.delivery_id for t in items)
        return []

    consume_until(b, "tasks.issuetype", handler, 1)
    assert sorted(handled) == sorted(f"d{i}" for i in range(50) if i != 17)
    [dead] = b.get("dead", 10)
    assert decode(dead.body, TaskMessage) == tasks[17] and "KeyError" in dead.headers["x-wcml-reason"]
    b.settle([dead], requeue=True)
    assert dead_letters.requeue(b, 10) == 1
    consume_until(b, "tasks.issuetype", handler, 1)
    [again] = b.get("dead", 10)
    assert decode(again.body, TaskMessage) == tasks[17]
    assert b.queue_depth("tasks.issuetype") == 0
