"""Ingest keeps accepting while RabbitMQ is down; the relay delivers every event exactly once after."""

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.samples import issue_payload, signed_request
from shared import topology
from shared.broker.rabbitmq import RabbitBroker
from shared.messages import EventEnvelope, decode
from tests.harness import RabbitControl, free_port
from tests.processes import Pipeline, wait_http
from tests.waiting import eventually, settled

SECRET, METRICS_KEY = "outage-secret", "outage-metrics-key"
DELIVERIES = 1000
pytestmark = pytest.mark.e2e


def post(url: str, i: int) -> int:
    request = signed_request(url, SECRET, "issues", issue_payload(number=i + 1), delivery_id=f"outage-{i}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_deliveries_accepted_while_rabbitmq_is_stopped_reach_it_exactly_once(amqp_url, pg_url, tmp_path):
    rabbit = RabbitControl(amqp_url)
    broker = RabbitBroker(amqp_url)
    topology.declare(broker)  # the queue that counts what the relay publishes
    pipeline = Pipeline({"WCML_BROKER_URL": amqp_url, "WCML_DATABASE_URL": pg_url, "WCML_BLOB_URL":
                         f"file://{tmp_path}/blobs", "WCML_WEBHOOK_SECRETS": SECRET,
                         "WCML_API_KEYS": f"metrics:{METRICS_KEY}"}, tmp_path)
    ingest_url = f"http://127.0.0.1:{free_port()}"
    pipeline.start("ingest", "ingest", "--bind", ingest_url[7:], "--workers", "2")
    try:
        wait_http(ingest_url + "/healthz")
        rabbit.stop()
        try:
            with ThreadPoolExecutor(8) as pool:
                webhook = ingest_url + "/webhooks/github"
                statuses = list(pool.map(lambda i: post(webhook, i), range(DELIVERIES)))
            assert statuses == [202] * DELIVERIES
            lag = f"wcml_relay_lag_events {float(DELIVERIES)}"

            def lag_reported() -> bool:  # by the relay beside ingest, on its own metrics port
                with urllib.request.urlopen(pipeline.metrics_url("ingest", "relay"), timeout=5) as response:
                    metrics = response.read().decode()
                assert lag in metrics, metrics[-1500:]
                return True

            # the relay measures its lag twice a second, in its own thread
            eventually(lag_reported, timeout=30, interval=0.2, message=f"{lag!r} in the relay's /metrics")
        finally:
            rabbit.start()

        # Nothing consumes events.dispatcher here: it only fills. Settled means the relay has
        # published every row, each after the broker's confirm, so the queue holds all it will ever
        # get (a double publish included) and its depth is final.
        settled(amqp_url, pg_url, timeout=90, ignore=("dead", "events.dispatcher"),
                message="the relay to publish every accepted delivery")
        depth = broker.queue_depth("events.dispatcher")
        delivered = broker.get("events.dispatcher", depth)
        ids = [decode(d.body, EventEnvelope).delivery_id for d in delivered]
        broker.settle(delivered, requeue=False)
        report = {"attempted": DELIVERIES, "accepted": statuses.count(202),
                  "on_queue": len(ids), "lost": len({f"outage-{i}" for i in range(DELIVERIES)} - set(ids)),
                  "duplicated": len(ids) - len(set(ids))}
        print("broker outage:", json.dumps(report))
        assert report["lost"] == 0 and report["duplicated"] == 0 and len(ids) == DELIVERIES, report
    except BaseException:
        print(pipeline.diagnostics())
        raise
    finally:
        codes = pipeline.stop_all()
        broker.close()
    assert codes == {"ingest": 0}
    assert SECRET not in pipeline.all_logs() and "sha256=" not in pipeline.all_logs()
