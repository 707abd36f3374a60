"""No bad input harms its neighbours anywhere in the pipeline, in either mode.

Hypothesis builds signed deliveries in GitHub's payload shape, about half of them with hostile values
in their string and number fields (``tests/hostile.py``), and they are posted from 8 clients through
the whole pipeline: ``wcml run`` (the embedded mode) as a process, and the distributed services as
processes on RabbitMQ, PostgreSQL and S3. Then every delivery is accounted for (``hostile.count``):
valid ones predicted exactly once per task with their latest documents, hostile ones refused at
ingest or dead-lettered alone; lost 0, duplicated 0. The counts are printed and written to
tests/output/faults/.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.ingest.event_log import envelope, event_log
from services.store.documents import latest_key
from shared import topology
from shared.blobs import BlobStore, open_blob_store
from shared.broker.rabbitmq import RabbitBroker
from shared.event_routes import load_rules, route
from tests import hostile
from tests.faults import RESULTS, SECRET
from tests.harness import free_port
from tests.processes import wait_http
from tests.waiting import eventually, settled

pytestmark = pytest.mark.e2e
DELIVERIES = 520  # at least 500 a run, in examples of 10
PER_EXAMPLE = 10


def post_generated(url: str, secret: str, posted: hostile.Posted) -> None:
    """Hypothesis draws the deliveries, ten an example, until ``DELIVERIES`` are posted."""
    numbers = itertools.count(1, PER_EXAMPLE)

    @settings(max_examples=DELIVERIES // PER_EXAMPLE, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def send(data):
        posted.post_all(url, secret, data.draw(hostile.deliveries(next(numbers), PER_EXAMPLE)))

    while len(posted.sent) < DELIVERIES:
        send()


def routed(engine: sa.Engine, deliveries: set[str]) -> dict[str, list[str] | str]:
    """What the routing rules make of each logged event: its tasks, or ``ROUTE_ERROR``."""
    rules, out = load_rules(), {}
    with engine.connect() as conn:
        for row in conn.execute(sa.select(event_log).where(event_log.c.delivery_id.in_(deliveries))):
            try:
                out[row.delivery_id] = sorted({t.task for t in route(rules, envelope(row))})
            except Exception:  # noqa: BLE001 - whatever the dispatcher cannot route, it dead-letters
                out[row.delivery_id] = hostile.ROUTE_ERROR
    return out


def documents(blobs: BlobStore) -> Callable[[str, int], bool]:
    return lambda task, number: blobs.get(latest_key(task, hostile.REPO, number)) is not None


def wait_for_documents(blobs: BlobStore, posted: hostile.Posted) -> None:
    """Until every valid delivery's latest documents are written (a row commits first), or a minute:
    the count then says which are missing."""
    has = documents(blobs)
    try:
        eventually(lambda: all(has(t, int(d.split("-")[1])) for d in posted.accepted if d.startswith("valid")
                               for t in hostile.TASKS), timeout=60, message="the latest documents")
    except AssertionError:
        pass


def report(name: str, counts: dict) -> dict:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(counts, indent=1) + "\n")
    print(f"hostile deliveries, {name}: {json.dumps(counts)}")
    return counts


# -- the embedded mode ------------------------------------------------------------------------------


def test_embedded_mode_isolates_every_hostile_delivery(tmp_path):
    bind = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    with (tmp_path / "run.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", bind],
                                   cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://{bind}/healthz", timeout=120)
        secret = (tmp_path / "var/webhook_secret").read_text().strip()
        posted = hostile.Posted()
        post_generated(f"http://{bind}/webhooks/github", secret, posted)
        engine = sa.create_engine(f"sqlite:///{tmp_path}/var/wcml.db", poolclass=sa.NullPool)
        queues = tmp_path / "var/queue.db"

        def at_rest() -> bool:
            with engine.connect() as conn:
                unpublished = conn.execute(sa.text(
                    "SELECT count(*) FROM event_log WHERE published_at IS NULL")).scalar_one()
            with sqlite3.connect(queues, timeout=30) as db:
                in_flight = db.execute("SELECT count(*) FROM messages WHERE queue != ?",
                                       (topology.DEAD_QUEUE.name,)).fetchone()[0]
            return unpublished == 0 and in_flight == 0

        calm = itertools.count()
        eventually(lambda: at_rest() and next(calm) >= 1, timeout=180, interval=0.5,
                   message="the embedded pipeline to settle")
        blobs = open_blob_store(f"file://{tmp_path}/var/blobs")
        wait_for_documents(blobs, posted)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT delivery_id, task FROM predictions"))
            predictions = [tuple(r) for r in rows]
        with sqlite3.connect(queues, timeout=30) as db:
            dead = [(body, json.loads(headers).get("x-wcml-reason")) for body, headers in db.execute(
                "SELECT body, headers FROM messages WHERE queue = ?", (topology.DEAD_QUEUE.name,))]
        counts = report("hostile-deliveries-embedded", hostile.count(
            posted, routed(engine, posted.accepted), predictions, dead, documents(blobs)))
        engine.dispose()
    finally:
        process.terminate()
        process.wait(60)
    hostile.assert_invariant(counts)


# -- the distributed mode ---------------------------------------------------------------------------


def test_distributed_mode_isolates_every_hostile_delivery(pipeline, amqp_url, pg_url, s3_url):
    posted = hostile.Posted()
    post_generated(pipeline.ingest_url + "/webhooks/github", SECRET, posted)
    settled(amqp_url, pipeline.engine, timeout=180)
    blobs = open_blob_store(s3_url)
    wait_for_documents(blobs, posted)
    broker = RabbitBroker(amqp_url)
    try:
        dead = broker.get(topology.DEAD_QUEUE.name, 10_000)
        broker.settle(dead, requeue=True)
    finally:
        broker.close()
    predictions = [(d, t) for d, t, _model in pipeline.predictions()]
    counts = report("hostile-deliveries-distributed", hostile.count(
        posted, routed(pipeline.engine, posted.accepted), predictions,
        [(d.body, d.headers.get("x-wcml-reason")) for d in dead], documents(blobs)))
    hostile.assert_invariant(counts)
