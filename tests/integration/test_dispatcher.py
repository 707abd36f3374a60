"""The dispatcher on real RabbitMQ: the routing table on real octokit payloads, poison to wcml.dead."""

import json
import subprocess
import sys
import threading

import pytest

from services.dispatcher.worker import Dispatcher
from services.ingest.event_log import EventLog
from services.ingest.outbox_relay import OutboxRelay
from services.ingest.webhook import WebhookDelivery
from services.samples import issue_payload
from shared import topology
from shared.broker import ConsumeOptions, Outgoing
from shared.broker.rabbitmq import RabbitBroker
from shared.database import create_engine
from shared.event_routes import load_rules
from shared.messages import EVENTS_EXCHANGE, TaskMessage, decode_each
from tests.octokit import examples
from tests.waiting import eventually

TASKS = ("issuetype", "needsdiagnosis")


def delivery(i: int, event: str, payload: dict) -> WebhookDelivery:
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else {}
    return WebhookDelivery(delivery_id=f"d-{i}", hook_id=None, event=event, action=payload.get("action"),
                           repo=(payload.get("repository") or {}).get("full_name"),
                           issue_number=issue.get("number"),
                           sender=(payload.get("sender") or {}).get("login"),
                           payload_text=json.dumps(payload))


@pytest.fixture
def dispatcher(amqp_url):
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, TASKS)
    stop = threading.Event()
    handler = Dispatcher(load_rules(), broker).handle
    thread = threading.Thread(target=broker.consume,
                              args=("events.dispatcher", handler, stop, ConsumeOptions(max_batch=64)))
    thread.start()
    yield broker
    stop.set()
    thread.join(10)
    broker.close()


def wait_for(broker, depths: dict[str, int], timeout: float = 30) -> dict[str, int]:
    """Until the queues hold ``depths`` and the dispatcher's own queue is empty; the depths seen."""
    def reached() -> dict[str, int]:
        seen = {q: broker.queue_depth(q) for q in depths}
        assert seen == depths and broker.queue_depth("events.dispatcher") == 0, seen
        return seen

    return eventually(reached, timeout=timeout, interval=0.2, message=f"queue depths {depths}")


def take_tasks(broker, expected: dict[str, int], timeout: float = 30) -> dict[str, list]:
    """Take the task messages from each queue (a batch's items one by one, with its delivery) until
    each queue gave its expected count and the dispatcher's own queue is empty."""
    taken: dict[str, list] = {q: [] for q in expected}

    def reached() -> dict[str, list]:
        for queue, items in taken.items():
            for d in broker.get(queue, 100):
                items.extend((d, item.message) for item in decode_each(d.body, TaskMessage))
                broker.settle([d], requeue=False)
        counts = {q: len(items) for q, items in taken.items()}
        assert counts == expected and broker.queue_depth("events.dispatcher") == 0, counts
        return taken

    return eventually(reached, timeout=timeout, interval=0.2, message=f"task messages {expected}")


def test_routing_table_on_every_octokit_payload(dispatcher, pg_url):
    engine = create_engine(pg_url)
    log = EventLog(engine)
    cases = [(e, p) for e, p in examples() if e != "ping"]
    def unlabeled(number, label):
        return {**issue_payload(number=number, action="unlabeled"), "label": {"name": label}}

    extra = [("issues", issue_payload(number=1, sender="webcompat-bot")),  # the bot's report: no ND
             ("issues", unlabeled(2, "action-needsmoderation")), ("issues", unlabeled(3, "browser-firefox"))]
    for i, (event, payload) in enumerate(cases + extra):
        log.append(delivery(i, event, payload))
    while OutboxRelay(log, dispatcher).relay_once():
        pass

    opened = sum(1 for e, p in cases if e == "issues" and p["action"] == "opened")
    edited = sum(1 for e, p in cases if e == "issues" and p["action"] == "edited")
    assert opened == 4 and edited == 3
    expected = {"tasks.needsdiagnosis": opened + 1, "tasks.issuetype": opened + edited + 1}
    taken = take_tasks(dispatcher, expected)
    assert dispatcher.queue_depth("dead") == 0

    routed = taken["tasks.needsdiagnosis"]
    messages = [m for _d, m in routed]
    by_delivery = {m.delivery_id: m for m in messages}
    bot, moderated = f"d-{len(cases)}", f"d-{len(cases) + 1}"
    assert bot not in by_delivery and by_delivery[moderated].action == "unlabeled"
    firsts = {}  # a message's id is its first task's id (and "+n" for a batch's n others)
    for d, m in routed:
        firsts.setdefault(d.message_id, m)
    assert all(message_id.split("+")[0] == f"{m.delivery_id}:needsdiagnosis"
               for message_id, m in firsts.items())
    sample = messages[0]
    assert sample.issue.repo == "Codertocat/Hello-World" and sample.issue.title and sample.issue.url
    engine.dispose()


def test_poison_messages_are_dead_lettered_with_reasons_listed_and_requeued(dispatcher, amqp_url):
    poison = [b"not json at all", json.dumps({"v": 1, "kind": "event"}).encode(),
              json.dumps({"v": 1, "kind": "event", "position": 1, "delivery_id": "x", "event": "issues",
                          "action": "opened", "repo": "a/b", "issue_number": None, "sender": "s",
                          "received_at": "2026-01-01T00:00:00Z", "payload": {"no": "issue"}}).encode()]
    dispatcher.publish([Outgoing(EVENTS_EXCHANGE, "github.issues.opened", body) for body in poison])
    assert wait_for(dispatcher, {"dead": 3, "tasks.issuetype": 0}) == {"dead": 3, "tasks.issuetype": 0}

    env = {"WCML_BROKER_URL": amqp_url, "WCML_DATABASE_URL": "sqlite:///:memory:",
           "WCML_BLOB_URL": "file://x", "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "services.cli", "dead", "list"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    reasons = sorted(r["reason"] for r in rows)
    assert len(rows) == 3 and all(r["queue"] == "events.dispatcher" for r in rows)
    assert any("not JSON" in r for r in reasons) and any("missing field" in r for r in reasons)
    assert any("has no issue object" in r for r in reasons)
    assert dispatcher.queue_depth("dead") == 3  # listing leaves them in place

    requeued = subprocess.run([sys.executable, "-m", "services.cli", "dead", "requeue"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert requeued.returncode == 0 and "requeued 3" in requeued.stdout, requeued.stderr
    # Still poison: the dispatcher refuses them again, and they are back in wcml.dead, not looping.
    assert wait_for(dispatcher, {"dead": 3}) == {"dead": 3}
