"""The predictor worker on a real RabbitMQ: batches in, one prediction per task out, poison to `dead`."""

from __future__ import annotations

import threading

import pytest

from services.predictor.serving.bundle import load_bundle
from services.predictor.serving.worker import Predictor
from services.predictor.training.demo import ensure_demo_bundles, load_demo
from shared import topology
from shared.broker import ConsumeOptions, Outgoing, dead_letters
from shared.broker.rabbitmq import RabbitBroker
from shared.messages import (
    TASKS_EXCHANGE,
    Prediction,
    TaskMessage,
    decode,
    decode_each,
    encode,
    encode_batch,
    replace,
)

TASK = "issuetype"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models")
    ensure_demo_bundles(path, [TASK], announce=lambda _line: None)
    return path


@pytest.fixture
def broker(amqp_url):
    b = RabbitBroker(amqp_url)
    topology.declare(b, [TASK])
    yield b
    b.close()


def task_message(i: int, issue, **changes) -> bytes:
    fields = {"task": TASK, "delivery_id": f"delivery-{i}", "position": i, "event": "issues",
              "action": "opened", "issue": issue, **changes}
    return encode(TaskMessage(**fields))


def drain(broker, queue: str) -> list:
    """Everything ready in ``queue``, fetched on one connection and then acked."""
    out = broker.get(queue, 1000)
    if out:
        broker.settle(out, requeue=False)
    return out


def test_batches_are_scored_published_and_acked_and_poison_is_dead_lettered(broker, models_dir):
    issues, _ = load_demo(TASK)
    good = [Outgoing(TASKS_EXCHANGE, TASK, task_message(i, issues[i % len(issues)]), message_id=f"t{i}")
            for i in range(200)]
    poison = [Outgoing(TASKS_EXCHANGE, TASK, b"{not json", message_id="p-json"),
              Outgoing(TASKS_EXCHANGE, TASK, task_message(900, issues[0], task="needsdiagnosis"),
                       message_id="p-task"),
              Outgoing(TASKS_EXCHANGE, TASK, task_message(901, issues[0], model_version="19990101T000000Z"),
                       message_id="p-model")]
    broker.publish(good[:100] + poison + good[100:])

    predictor = Predictor(TASK, models_dir, broker)
    stop, sizes, lock = threading.Event(), [], threading.Lock()

    def handler(batch):
        rejections = predictor.handle(batch)
        with lock:
            sizes.append(len(batch))
            if sum(sizes) >= len(good) + len(poison):
                stop.set()
        return rejections

    options = ConsumeOptions(prefetch=256, max_batch=64, max_wait=0.05)
    thread = threading.Thread(target=broker.consume, args=(f"tasks.{TASK}", handler, stop, options))
    thread.start()
    thread.join(60)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()

    assert sum(sizes) == len(good) + len(poison)  # each message handled once: none redelivered
    assert max(sizes) > 1  # micro-batches, one predict call each
    assert broker.queue_depth(f"tasks.{TASK}") == 0  # all acked (unacked ones return when the consumer goes)

    results = [item.message for d in drain(broker, topology.RESULTS_QUEUE.name)
               for item in decode_each(d.body, Prediction)]  # a predict call's results: one message
    assert sorted(p.delivery_id for p in results) == sorted(f"delivery-{i}" for i in range(200))
    version = load_bundle(models_dir, TASK).version
    for p in results:
        assert p.task == TASK and p.model_version == version and p.label in ("bug", "feature", "question")
        assert p.confidence == max(p.probabilities.values())

    dead = {d.message_id: d.headers["x-wcml-reason"] for d in drain(broker, topology.DEAD_QUEUE.name)}
    assert set(dead) == {"p-json", "p-task", "p-model"}
    assert "not JSON" in dead["p-json"]
    assert "'needsdiagnosis' sent to the issuetype predictor" in dead["p-task"]
    assert "19990101T000000Z" in dead["p-model"] and "not installed" in dead["p-model"]
    assert broker.queue_depth(f"tasks.{TASK}") == 0


def consume_all(broker, predictor, expected: int) -> None:
    """Run the predictor's consumer until it has handled ``expected`` deliveries (a split counts once)."""
    stop, seen = threading.Event(), []

    def handler(batch):
        seen.extend(d.tag for d in batch)
        if len(set(seen)) >= expected:
            stop.set()  # the batch in hand is still settled: stop ends the loop after it
        return predictor.handle(batch)

    thread = threading.Thread(target=broker.consume, args=(f"tasks.{TASK}", handler, stop,
                                                           ConsumeOptions(max_wait=0.05)))
    thread.start()
    thread.join(60)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def test_an_item_the_model_fails_on_is_dead_lettered_alone_and_its_batch_is_scored(broker, models_dir):
    """A replay's body of 50 task messages, one of them a title the model cannot read (a lone
    surrogate, as an event logged before ingest refused them would carry): 49 predictions, and the one
    item dead-lettered by itself, which fails again when requeued and goes back, once."""
    issues, _ = load_demo(TASK)
    tasks = [TaskMessage(task=TASK, delivery_id=f"delivery-{i}", position=i, event="issues", action="opened",
                         issue=issues[i % len(issues)]) for i in range(50)]
    tasks[17] = replace(tasks[17], issue=replace(tasks[17].issue, title="broken \ud800 title"))
    broker.publish([Outgoing(TASKS_EXCHANGE, TASK, encode_batch(tasks), message_id="batch-of-50")])

    consume_all(broker, Predictor(TASK, models_dir, broker), 1)

    results = [item.message for d in drain(broker, topology.RESULTS_QUEUE.name)
               for item in decode_each(d.body, Prediction)]
    assert sorted(p.delivery_id for p in results) == sorted(f"delivery-{i}" for i in range(50) if i != 17)
    [dead] = broker.get(topology.DEAD_QUEUE.name, 10)
    assert decode(dead.body, TaskMessage) == tasks[17]  # the item alone, a plain task message
    assert "handler error: UnicodeEncodeError" in dead.headers["x-wcml-reason"]
    broker.settle([dead], requeue=True)

    assert dead_letters.requeue(broker, 100) == 1
    consume_all(broker, Predictor(TASK, models_dir, broker), 1)
    assert drain(broker, topology.RESULTS_QUEUE.name) == []
    [again] = drain(broker, topology.DEAD_QUEUE.name)
    assert decode(again.body, TaskMessage) == tasks[17]
    assert broker.queue_depth(f"tasks.{TASK}") == 0
