"""Fault tests: each breaks one part of the running distributed pipeline and counts the outcome.

Bar for every one: every accepted webhook has exactly one prediction per routed task
(lost = 0, duplicated = 0, unexpected = 0). Reports land in tests/output/faults/.
"""

import json
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared import topology
from shared.broker import Outgoing
from shared.broker.port import Queue
from shared.broker.rabbitmq import RabbitBroker
from shared.messages import EVENTS_EXCHANGE, RESULTS_EXCHANGE, TASKS_EXCHANGE
from tests.faults import TASKS, check
from tests.harness import RabbitControl
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


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


EVENTS_TAP = "test.events-tap"  # a copy of every message the events exchange routes, counted at the end


def hold_unpublished(conn: sa.Connection) -> None:
    """Lock event-log rows not yet marked published (at least one, taken as ingest commits them), in
    a transaction left open: the relay's mark of them waits for it, once the broker has confirmed them."""
    def taken() -> bool:
        """an unpublished event to hold"""
        held = conn.execute(sa.text("SELECT position FROM event_log WHERE published_at IS NULL "
                                    "ORDER BY position FOR UPDATE")).all()
        if not held:
            conn.rollback()
        return bool(held)

    eventually(taken, timeout=30, interval=0.002)


WAITING_MARK = sa.text("SELECT pid, application_name, query FROM pg_stat_activity "
                       "WHERE query LIKE 'UPDATE event_log%' AND :holder = ANY(pg_blocking_pids(pid))")


def relay_waiting_on(engine: sa.Engine, holder: int) -> tuple[int, str, list[str]] | None:
    """The relay whose mark (``UPDATE event_log``) waits on ``holder``'s row locks: its session, its
    process's name (application_name) and the deliveries it marks, each one confirmed by the broker."""
    with engine.connect() as conn:
        waiting = conn.execute(WAITING_MARK, {"holder": holder}).first()
        if waiting is None:
            return None
        listed = waiting.query.partition(" IN (")[2]  # psycopg2 sends the positions as literals
        numbers = listed.split(")")[0].split(",")
        if ")" not in listed:  # the text is cut at track_activity_query_size: the last one may be cut too
            numbers = numbers[:-1]
        marking = conn.execute(sa.text("SELECT delivery_id FROM event_log WHERE position = ANY(:p)"),
                               {"p": [int(n) for n in numbers]}).scalars().all()
        return waiting.pid, waiting.application_name, marking


def unpublished_among(engine: sa.Engine, deliveries: list[str]) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM event_log WHERE published_at IS NULL "
                                    "AND delivery_id = ANY(:ids)"), {"ids": deliveries}).scalar_one()


def kill_the_relay_between_confirm_and_mark(pipeline) -> list[str]:
    """SIGKILL the publishing ``wcml relay`` while its mark of events the broker confirmed waits, start
    a new one (it stands by), and wait until a relay has published them again; return them."""
    engine = pipeline.engine
    with engine.connect() as holder:
        hold_unpublished(holder)
        holder_pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        session, relay, window = eventually(lambda: relay_waiting_on(engine, holder_pid), timeout=60,
                                            interval=0.01, message="a relay's mark to wait on the held rows")
        pipeline.procs.pop(relay).stop(signal.SIGKILL)
        # A killed client's session ends when PostgreSQL next reads from it; this one waits on a lock
        # and would commit the dead relay's mark once the lock is gone: ended here.
        with engine.connect() as admin:
            ended = admin.execute(sa.text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": session})
            assert ended.scalar_one()
        holder.rollback()
    assert unpublished_among(engine, window) == len(window), "the killed relay's mark committed"
    pipeline.start_relay()
    eventually(lambda: unpublished_among(engine, window) == 0, timeout=60, interval=0.05,
               message="a relay to publish the events the killed one left unmarked")
    return window


@pytest.mark.parametrize("pipeline", [{"relays": 4}], indirect=True, ids=["4-relays"])
def test_the_relay_killed_between_the_brokers_confirm_and_its_mark_20_times(pipeline, amqp_url):
    """One relay publishes (the relay lock), three stand by: a relay killed is replaced at once, and the
    takeover does not wait for a process to start."""
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, TASKS, extra=[Queue(EVENTS_TAP, ((EVENTS_EXCHANGE, "#"),), dead_letter=False)])
    load = pipeline.load(rate=50, prefix="relay-kill")
    sender = load.run(count=50 * 300)  # stopped after the last kill
    windows = []
    started = time.monotonic()
    for _ in range(20):
        time.sleep(random.uniform(0.2, 0.8))  # the fault's schedule: traffic between kills, not a wait
        windows.append(kill_the_relay_between_confirm_and_mark(pipeline))
    kills_took = time.monotonic() - started
    load.stop.set()
    sender.join(120)
    pipeline.wait_for(len(load.accepted) * len(TASKS), ignore=(EVENTS_TAP,))
    copies = Counter(d.message_id for d in broker.get(EVENTS_TAP, broker.queue_depth(EVENTS_TAP)))
    broker.close()
    in_window = {d for window in windows for d in window}
    republished = {d: n for d, n in copies.items() if n > 1}
    report = check("sigkill_relay_between_confirm_and_mark", load, pipeline.predictions(), {
        "relay_kills": len(windows), "kills_took_s": round(kills_took, 1),
        "events_confirmed_not_marked_at_the_kills": len(in_window), "events_republished": len(republished),
        "extra_copies_on_the_events_exchange": sum(n - 1 for n in republished.values()),
        "events_on_the_events_exchange": sum(copies.values()), "events_per_kill": [len(w) for w in windows]})
    assert_clean(report)
    assert set(load.accepted) <= set(copies), "an accepted event never reached the events exchange"
    assert all(window for window in windows)
    assert in_window <= set(republished), "an event in the window was not published again"
