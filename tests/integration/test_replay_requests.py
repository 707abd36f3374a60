"""A replay asked for over the query API is run by the replay source beside the relay."""

import threading

from services.ingest.event_log import EventLog
from services.ingest.replay import Replayer
from services.ingest.replay_runs import ReplayRuns
from services.ingest.webhook import WebhookDelivery
from services.store.api import create_app
from shared.broker import topology
from shared.broker.rabbitmq import RabbitBroker
from shared.database import create_engine

KEY = "replay-key"


def test_api_queues_a_replay_that_the_source_runs_and_reports(pg_url, amqp_url):
    engine = create_engine(pg_url)
    log = EventLog(engine)
    for i in range(30):
        log.append(WebhookDelivery(f"d{i}", None, "issues", "opened", "a/b", i + 1, "s", '{"issue": {}}'))
    client = create_app(engine, [KEY]).test_client()
    auth = {"Authorization": f"Bearer {KEY}"}

    bad = client.post("/api/v1/replays", json={"from_position": "one"}, headers=auth)
    assert bad.status_code == 400 and "from_position" in bad.json["error"]
    assert client.post("/api/v1/replays", json={}).status_code == 401

    queued = client.post("/api/v1/replays", json={"from_position": 11, "tasks": ["issuetype"]}, headers=auth)
    assert queued.status_code == 202 and queued.json["state"] == "requested"
    run_id = queued.json["id"]

    broker = RabbitBroker(amqp_url)
    topology.declare(broker, ["issuetype"])
    replayer = Replayer(log, broker, ReplayRuns(engine))
    assert replayer.run_requested(threading.Event()) == 1
    status = client.get(f"/api/v1/replays/{run_id}", headers=auth).json
    progress = (status["state"], status["total"], status["published"], status["progress"])
    assert progress == ("done", 20, 20, 1.0)
    assert broker.queue_depth("events.dispatcher") == 20
    assert replayer.run_requested(threading.Event()) == 0  # nothing left queued
    broker.close()
    engine.dispose()
