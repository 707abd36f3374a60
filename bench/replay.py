"""Replay throughput: events/s from the event log to stored predictions (both tasks) for N logged
events, beside the raw RabbitMQ publish+consume rate with confirms measured in the same run.

    .venv/bin/python -m bench.replay [--events 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime

import pika
import sqlalchemy as sa

from bench import raw_broker
from bench.common import ROOT, cpu_of_commands, save
from bench.pipeline import TASKS, BenchPipeline
from services.samples import issue_payload
from tests.waiting import eventually

QUEUES = ("events.dispatcher", *(f"tasks.{t}" for t in TASKS), "results.store")
SERVERS = {"postgresql": ("postgres",), "rabbitmq": ("beam.smp",)}  # process names


def load_log(db_url: str, count: int) -> None:
    engine = sa.create_engine(db_url)
    table = sa.table(
        "event_log",
        *(
            sa.column(c)
            for c in (
                "delivery_id",
                "event",
                "action",
                "repo",
                "issue_number",
                "sender",
                "received_at",
                "payload",
                "published_at",
            )
        ),
    )
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, count, 10_000):
            conn.execute(
                table.insert(),
                [
                    {
                        "delivery_id": f"bench-{i}",
                        "event": "issues",
                        "action": "opened",
                        "repo": "webcompat/web-bugs",
                        "issue_number": i + 1,
                        "sender": "reporter",
                        "received_at": now,
                        "published_at": now,
                        "payload": json.dumps(
                            issue_payload(number=i + 1, title=f"site{i % 97}.example - broken")
                        ),
                    }
                    for i in range(start, min(count, start + 10_000))
                ],
            )
    engine.dispose()


def window_rate(samples: list[tuple[float, int]], start: int, end: int) -> float:
    """Events/s between the moments ``start`` and ``end`` events had both predictions stored."""
    def when(events: int) -> float:
        return next((t for t, stored in samples if stored >= events * len(TASKS)), samples[-1][0])

    seconds = when(end) - (when(start) if start else 0.0)
    return (end - start) / seconds if seconds > 0 else 0.0


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle nor waiting for I/O), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_consumers(amqp_url: str, timeout: float = 120) -> None:
    def consumed() -> bool:
        """a consumer on every queue"""
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            channel = connection.channel()  # a passive declare of a missing queue closes it: one per round
            return all(channel.queue_declare(q, passive=True).method.consumer_count for q in QUEUES)
        finally:
            if connection.is_open:
                connection.close()

    eventually(consumed, timeout=timeout, interval=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--store-replicas", type=int, default=1, help="store processes side by side")
    args = parser.parse_args()
    pipeline = BenchPipeline(with_ingest=False, with_api=False, store_replicas=args.store_replicas)
    try:
        raw = raw_broker.run(pipeline.amqp_url, args.events)
        load_log(pipeline.db_url, args.events)
        wait_for_consumers(pipeline.amqp_url)
        cpu_before, busy_before = pipeline.cpu(), busy_seconds()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the services are reaped later
        servers_before = {name: cpu_of_commands(*names) for name, names in SERVERS.items()}
        engine = sa.create_engine(pipeline.db_url)
        expected = args.events * len(TASKS)
        start = time.monotonic()
        replay = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "replay", "--quiet"],
            cwd=ROOT,
            env={**os.environ, **pipeline.env},
            stdout=subprocess.PIPE,
            text=True,
        )
        stored, published_at = 0, None
        samples: list[tuple[float, int]] = []  # (seconds since start, predictions stored)
        checkpoints = [n for n in (10_000, 100_000, 1_000_000) if n <= args.events]
        resident: dict[str, dict[str, float]] = {}  # RSS per service when N events are stored

        def all_stored() -> bool:
            nonlocal stored, published_at
            if published_at is None and replay.poll() is not None:
                published_at = time.monotonic() - start
            # max(id) is an index lookup; count(*) reads the whole table, which would make the
            # benchmark itself slower as the table grows, so it is run only once max(id) is there
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM predictions")).scalar_one()
                if stored >= expected:
                    stored = conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one()
            samples.append((time.monotonic() - start, stored))
            while checkpoints and stored >= checkpoints[0] * len(TASKS):
                resident[f"{checkpoints.pop(0):,}"] = pipeline.resident()
            return stored >= expected

        # at the 2026-12-02 rate (about 400 events/s) a million take 42 minutes: allow for a slower run
        eventually(all_stored, timeout=max(1800, args.events / 100), interval=0.5,
                   message=lambda: f"{expected} predictions stored ({stored} so far)")
        elapsed = time.monotonic() - start

        def latest_written() -> bool:
            """every latest document written: the follower has no issue left due"""
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT NOT EXISTS (SELECT 1 FROM latest_due)")).scalar_one()

        eventually(latest_written, timeout=max(600, args.events / 100), interval=0.5)
        latest_elapsed = time.monotonic() - start
        replay.wait()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        replay_cpu = sum(getattr(children, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
        memory = pipeline.memory()
        cpu = {name: round(used - cpu_before.get(name, 0.0), 1) for name, used in pipeline.cpu().items()}
        cpu.update({name: round(cpu_of_commands(*names) - servers_before[name], 1)
                    for name, names in SERVERS.items()})
        cpu["replay_source"] = round(replay_cpu, 1)  # `wcml replay`: reads the log, routes, publishes
        cpu["machine_busy"] = round(busy_seconds() - busy_before, 1)  # ours, RabbitMQ, PostgreSQL, the rest
        engine.dispose()
    finally:
        pipeline.close()
    rate = args.events / elapsed
    window = 100_000 if args.events >= 1_000_000 else args.events // 10  # events
    first, last = window_rate(samples, 0, window), window_rate(samples, args.events - window, args.events)
    save(
        "replay",
        {
            "setup": "wcml replay of N logged issues.opened events (the replay source routes them) -> "
            "2 predictors -> store (PostgreSQL rows + batched history documents on local disk; latest "
            "documents by the store's follower of the table), each service one process (the store: "
            "store_replicas)",
            "events": args.events,
            "store_replicas": args.store_replicas,
            "predictions_stored": stored,
            "seconds": round(elapsed, 1),
            "replay_publish_seconds": round(published_at, 1) if published_at else None,
            "events_per_s": round(rate),
            # the latest document per issue is written by a follower of the table, after the row
            "latest_documents_seconds": round(latest_elapsed, 1),
            "first_window_events_per_s": round(first), "last_window_events_per_s": round(last),
            "window_events": window, "last_to_first": round(last / first, 2) if first else None,
            "resident_mib_at": resident,
            "raw_broker": raw,
            "ratio_to_raw_broker": round(rate / raw["messages_per_s"], 3),
            "peak_rss_mib": memory,
            "cpu_seconds": cpu,  # per service, during the replay: where the time goes
        },
    )


if __name__ == "__main__":
    main()
