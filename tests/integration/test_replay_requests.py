"""A replay asked for over the query API is a message to the replay source, which records and runs it."""

import threading

from services.ingest.event_log import EventLog
from services.ingest.replay import Replayer, ReplaySource
from services.ingest.replay_runs import ReplayRuns
from services.ingest.webhook import WebhookDelivery
from services.store.api import create_app
from services.store.service import control_messages_to
from shared.broker import topology
from shared.broker.rabbitmq import RabbitBroker
from shared.database import create_engine
from tests.waiting import eventually

KEY = "replay-key"


def test_api_asks_the_replay_source_which_runs_the_replay_and_reports(pg_url, amqp_url):
    engine = create_engine(pg_url)
    log = EventLog(engine)
    for i in range(30):
        log.append(WebhookDelivery(f"d{i}", None, "issues", "opened", "a/b", i + 1, "s", '{"issue": {}}'))
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, ["issuetype"])
    client = create_app(engine, [KEY], control_messages_to(broker)).test_client()
    auth = {"Authorization": f"Bearer {KEY}"}

    bad = client.post("/api/v1/replays", json={"from_position": "one"}, headers=auth)
    assert bad.status_code == 400 and "from_position" in bad.json["error"]
    assert client.post("/api/v1/replays", json={}).status_code == 401
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 0  # refused requests send nothing

    queued = client.post("/api/v1/replays", json={"from_position": 11, "tasks": ["issuetype"]}, headers=auth)
    assert queued.status_code == 202 and queued.json["state"] == "requested"
    run_id = queued.json["id"]
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 1

    replayer = Replayer(log, broker, ReplayRuns(engine))
    source, stop = ReplaySource(replayer), threading.Event()
    queue = topology.REPLAYS_QUEUE.name
    consumer = threading.Thread(target=broker.consume, args=(queue, source.handle, stop))
    consumer.start()
    try:
        eventually(lambda: run_id in replayer.runs.requested(), timeout=30, message="the request recorded")
    finally:
        stop.set()
        consumer.join(10)
    assert client.get(f"/api/v1/replays/{run_id}", headers=auth).json["state"] == "requested"
    assert replayer.run_requested(threading.Event()) == 1
    status = client.get(f"/api/v1/replays/{run_id}", headers=auth).json
    progress = (status["state"], status["total"], status["published"], status["progress"])
    assert progress == ("done", 20, 20, 1.0)
    assert broker.queue_depth("events.dispatcher") == 20
    assert replayer.run_requested(threading.Event()) == 0  # nothing left queued
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 0  # the request was acknowledged
    broker.close()
    engine.dispose()
