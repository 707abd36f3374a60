"""The embedded mode's durable broker: the in-process broker's semantics, queues kept in a file."""


import pytest

from shared import topology
from shared.broker import ConsumeOptions, Outgoing, PublishError, Rejection
from shared.broker.sqlite import DELIVERY_LIMIT, SQLiteBroker
from shared.messages import EVENTS_EXCHANGE, TASKS_EXCHANGE
from tests.builders import consume_until


def open_broker(path):
    b = SQLiteBroker(path)
    topology.declare(b, ["issuetype"])
    return b


@pytest.fixture
def path(tmp_path):
    return tmp_path / "queue.db"


def test_routing_and_unroutable(path):
    b = open_broker(path)
    b.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"1"), Outgoing(EVENTS_EXCHANGE, "replay.x.y", b"2")])
    assert (b.queue_depth("tasks.issuetype"), b.queue_depth("events.dispatcher")) == (1, 1)
    with pytest.raises(PublishError):
        b.publish([Outgoing(TASKS_EXCHANGE, "unknown-task", b"1")])
    assert b.queue_depth("tasks.issuetype") == 1  # nothing of a refused batch is kept


def test_published_messages_outlive_the_broker_and_another_process_sees_them(path):
    first = open_broker(path)
    first.publish([Outgoing(EVENTS_EXCHANGE, "github.issues.opened", str(i).encode(), {"h": i}, f"m{i}")
                   for i in range(5)])
    first.close()
    second = open_broker(path)
    got = second.get("events.dispatcher", 10)
    assert [(d.body, d.headers, d.message_id) for d in got] == [
        (str(i).encode(), {"h": i}, f"m{i}") for i in range(5)]


def test_taken_and_unacknowledged_is_ready_again_after_recover(path):
    crashed = open_broker(path)
    crashed.publish([Outgoing(EVENTS_EXCHANGE, "github.x", str(i).encode()) for i in range(3)])
    taken = crashed.get("events.dispatcher", 2)  # then the process dies without acknowledging
    assert len(taken) == 2 and crashed.queue_depth("events.dispatcher") == 1
    restarted = open_broker(path)
    assert restarted.recover() == 2
    again = consume_until(restarted, "events.dispatcher", lambda batch: [], 3)
    assert sorted(d.body for d in again) == [b"0", b"1", b"2"]
    assert sum(d.redelivered for d in again) == 2
    assert restarted.queue_depth("events.dispatcher") == 0 and restarted.in_flight() == 0


def test_rejections_and_crashes_dead_letter_only_the_guilty_message(path):
    b = open_broker(path)
    b.publish([Outgoing(EVENTS_EXCHANGE, "github.x", str(i).encode()) for i in range(8)])
    handled = []

    def handler(batch):
        if any(d.body == b"5" for d in batch):
            raise KeyError("boom")
        handled.extend(d.body for d in batch)
        return [Rejection(d, "bad") for d in batch if d.body == b"2"]

    consume_until(b, "events.dispatcher", handler, 8, ConsumeOptions(max_batch=8, max_wait=0.05))
    assert sorted(handled) == [str(i).encode() for i in range(8) if i != 5]
    dead = {d.body: d.headers for d in b.get("dead", 10)}
    assert set(dead) == {b"2", b"5"} and dead[b"2"]["x-wcml-reason"] == "bad"
    assert "KeyError" in dead[b"5"]["x-wcml-reason"] and dead[b"5"]["x-wcml-queue"] == "events.dispatcher"


def test_a_message_taken_too_often_goes_to_the_dead_queue(path):
    b = open_broker(path)
    b.publish([Outgoing(EVENTS_EXCHANGE, "github.x", b"poison")])
    for _ in range(DELIVERY_LIMIT):
        b.settle(b.get("events.dispatcher", 1), requeue=True)
    assert b.get("events.dispatcher", 1) == []
    [dead] = b.get("dead", 1)
    assert dead.body == b"poison" and dead.headers["x-wcml-reason"] == "delivery limit exceeded"


def test_the_file_is_readable_by_its_owner_only(path):
    open_broker(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_process_that_declared_less_routes_by_what_the_file_holds(path):
    open_broker(path)  # the serving instance declared its task queues
    tool = SQLiteBroker(path)  # e.g. `wcml dead requeue`: the base topology only
    topology.declare(tool)
    tool.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"back")])
    assert tool.queue_depth("tasks.issuetype") == 1
