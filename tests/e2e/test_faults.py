"""Fault tests: each breaks one part of the running distributed pipeline and counts the outcome.

Bar for every one: every accepted webhook has exactly one prediction per routed task
(lost = 0, duplicated = 0, unexpected = 0). Reports land in tests/output/faults/.
"""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from shared.broker import Outgoing, topology
from shared.broker.rabbitmq import RabbitBroker
from shared.messages import EVENTS_EXCHANGE, RESULTS_EXCHANGE, TASKS_EXCHANGE
from tests.faults import TASKS, FaultPipeline, check
from tests.harness import RabbitControl
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(amqp_url, pg_url, s3_url, s3_endpoint, tmp_path):
    env = {"WCML_BROKER_URL": amqp_url, "WCML_DATABASE_URL": pg_url, "WCML_BLOB_URL": s3_url,
           "WCML_MODELS_DIR": str(tmp_path / "models"), **s3_endpoint.env}
    p = FaultPipeline(env, tmp_path, pg_url)
    try:
        p.start_all()
        yield p
    except BaseException:
        print(p.diagnostics())
        raise
    finally:
        codes = p.close()
    if any(codes.values()):
        print(codes, p.diagnostics())
    assert not any(codes.values()), codes


def assert_clean(report: dict) -> None:
    assert report["accepted"] == report["attempted"], report
    assert (report["lost"], report["duplicated"], report["unexpected"]) == (0, 0, 0), report


def test_rabbitmq_stopped_for_20_seconds_while_webhooks_keep_arriving(pipeline, amqp_url):
    rabbit = RabbitControl(amqp_url)
    load = pipeline.load(rate=20, prefix="rabbit")
    sender = load.run(count=700)  # 35 s of traffic
    time.sleep(5)  # the fault's schedule: 5 s of traffic before it, not a wait
    rabbit.stop()
    try:
        time.sleep(20)  # the fault itself: RabbitMQ down for 20 s
    finally:
        rabbit.start()
    sender.join(180)
    pipeline.wait_for(len(load.accepted) * len(TASKS), timeout=180)
    report = check("rabbitmq_stopped_20s", load, pipeline.predictions())
    assert_clean(report)


@pytest.mark.parametrize("victim", ["predictor-needsdiagnosis", "store"])
def test_a_consumer_killed_with_sigkill_mid_stream(pipeline, victim):
    load = pipeline.load(rate=40, prefix=f"kill-{victim}")
    sender = load.run(count=600)
    time.sleep(5)  # the fault's schedule: 5 s of traffic before the kill, not a wait
    pipeline.procs[victim].stop(signal.SIGKILL)
    time.sleep(2)  # the fault itself: the consumer stays dead for 2 s
    if victim == "store":
        pipeline.start("store", "store")
    else:
        pipeline.start_predictor("needsdiagnosis")
    sender.join(120)
    pipeline.wait_for(len(load.accepted) * len(TASKS))
    report = check(f"sigkill_{victim.split('-')[0]}", load, pipeline.predictions())
    assert_clean(report)


def test_postgresql_restarted_while_ingest_is_under_load(pipeline):
    load = pipeline.load(rate=40, prefix="pg")
    sender = load.run(count=600)
    time.sleep(4)  # the fault's schedule: 4 s of traffic before the restart, not a wait
    cluster = sorted(Path("/etc/postgresql").iterdir())[0].name
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"], check=True,
                   capture_output=True, timeout=120)
    sender.join(180)
    pipeline.wait_for(len(load.accepted) * len(TASKS), timeout=180)
    report = check("postgresql_restart", load, pipeline.predictions())
    assert_clean(report)
    assert load.refusals, "the restart should have been visible to the sender (503 or refused connections)"
    assert set(load.refusals) <= {0, 503}, report


def test_a_poison_message_in_every_queue_is_dead_lettered_and_the_rest_flows(pipeline, amqp_url):
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, TASKS)
    load = pipeline.load(rate=40, prefix="poison")
    sender = load.run(count=200)
    time.sleep(1)  # the fault's schedule: the poison goes in after 1 s of traffic, not a wait
    poison = [Outgoing(EVENTS_EXCHANGE, "github.issues.opened", b"\x00not json"),
              *(Outgoing(TASKS_EXCHANGE, task, b'{"v": 1, "kind": "task"}') for task in TASKS),
              Outgoing(RESULTS_EXCHANGE, "needsdiagnosis", json.dumps({"v": 99}).encode())]
    broker.publish(poison)
    sender.join(120)
    pipeline.wait_for(len(load.accepted) * len(TASKS))
    eventually(lambda: broker.queue_depth("dead") >= len(poison), timeout=30, interval=0.2,
               message=f"{len(poison)} poison messages in wcml.dead")
    dead = broker.get("dead", 100)
    queues = sorted(d.headers.get("x-wcml-queue") for d in dead)
    broker.settle(dead, requeue=False)
    broker.close()
    report = check("poison_in_every_queue", load, pipeline.predictions(),
                   {"dead_lettered": len(dead), "dead_queues": queues})
    assert_clean(report)
    assert queues == sorted(["events.dispatcher", "tasks.issuetype", "tasks.needsdiagnosis", "results.store"])
    assert all(d.headers.get("x-wcml-reason") for d in dead)


def test_a_bundle_with_a_wrong_hash_is_refused_and_nothing_is_lost(pipeline, tmp_path):
    models = tmp_path / "models" / "needsdiagnosis"
    [bundle] = [p for p in models.iterdir() if p.is_dir()]
    pipeline.procs["predictor-needsdiagnosis"].stop()
    model_file = next(p for p in bundle.iterdir() if p.name != "manifest.json")
    original = model_file.read_bytes()
    model_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))

    refused = pipeline.run("predictor", "--task", "needsdiagnosis")
    assert refused.returncode == 2
    assert "sha256" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr

    load = pipeline.load(rate=40, prefix="hash")
    load.run(count=200).join(60)
    model_file.write_bytes(original)  # the operator installs a good bundle and restarts
    pipeline.start_predictor("needsdiagnosis")
    pipeline.wait_for(len(load.accepted) * len(TASKS))
    report = check("bundle_wrong_hash", load, pipeline.predictions(),
                   {"refusal": refused.stderr.strip()[:200]})
    assert_clean(report)
