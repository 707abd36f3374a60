"""Predictor speed: single-issue latency, batch throughput per process, and the original design's cost.

The original webcompat-ml started a fresh process per issue (start Python, import, load the model,
predict one); ``fresh_process`` measures exactly that with our bundle, so the ratio is like for like.
Prints JSON. Not a test: figures drift with the machine's load.

    nice .venv/bin/python bench/predictor.py --model var/models/issuetype/<version> [--data FILE]

``through_broker``: the same bundle behind the predictor's own consumer (``Predictor.handle``, the
service's consume options and two threads) on a fresh RabbitMQ vhost, the task queue filled first
as a replay fills it (batches of 50 tasks), timed from the first delivery to the last result
confirmed: issues/s per process through the broker, beside the in-process batch figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import fresh_vhost
from services.predictor.service import OPTIONS
from services.predictor.serving.bundle import Bundle, load_bundle
from services.predictor.serving.worker import Predictor
from services.predictor.training.datasets import read_labelled
from shared import topology
from shared.broker.rabbitmq import RabbitBroker
from shared.event_routes import task_messages
from shared.messages import IssueSnapshot, TaskMessage

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared/datasets/nlbse24/issues_test.csv"

ONE_SHOT = """
import sys
from pathlib import Path
from services.predictor.serving.bundle import load_bundle
from shared.messages import IssueSnapshot
bundle = load_bundle(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
print(bundle.predict([IssueSnapshot(sys.argv[4], 1, "u", sys.argv[5], sys.argv[6], None)])[0].label)
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def through_broker(bundle: Bundle, models_dir: Path, issues: list[IssueSnapshot], count: int) -> dict:
    """Issues/s through RabbitMQ: ``count`` tasks queued, then consumed and their results published."""
    url, drop = fresh_vhost()
    broker = RabbitBroker(url)
    task = bundle.task.name
    try:
        topology.declare(broker, [task])
        tasks = [TaskMessage(task=task, delivery_id=f"bench-{i}", position=i + 1, event="issues",
                             action="opened", issue=issues[i % len(issues)], replay_id="bench")
                 for i in range(count)]
        for start in range(0, count, 5_000):
            broker.publish(task_messages(tasks[start:start + 5_000]))
        predictor = Predictor(task, models_dir, broker, bundle)
        stop, lock, done, started = threading.Event(), threading.Lock(), [0], []

        def handle(deliveries):
            started.append(time.perf_counter())
            rejections = predictor.handle(deliveries)
            with lock:
                done[0] += sum(d.body.count(b'"delivery_id"') for d in deliveries)  # tasks, batched or not
                if done[0] >= count:
                    stop.set()
            return rejections

        threads = [threading.Thread(target=broker.consume, args=(topology.task_queue(task).name, handle, stop,
                                                                  OPTIONS)) for _ in range(2)]
        for t in threads:
            t.start()
        stop.wait(600)
        ended = time.perf_counter()
        stop.set()
        for t in threads:
            t.join(30)
        results = broker.queue_depth(topology.RESULTS_QUEUE.name)
    finally:
        broker.close()
        drop()
    seconds = ended - min(started)
    return {"tasks": count, "issues_per_second": round(count / seconds), "seconds": round(seconds, 2),
            "result_messages": results, "tasks_per_message": max(1, count // len(task_messages(tasks)))}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="bundle directory <models>/<task>/<version>")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--single", type=int, default=500, help="single-issue predictions to time")
    parser.add_argument("--fresh", type=int, default=3, help="fresh processes to time")
    parser.add_argument("--batch-issues", type=int, help="issues per batch size (default: all the rest)")
    parser.add_argument("--broker-tasks", type=int, default=20_000,
                        help="tasks through RabbitMQ (0: skip; needs the bench broker)")
    args = parser.parse_args()
    path = Path(args.model).resolve()
    models_dir, task, version = path.parent.parent, path.parent.name, path.name

    start = time.perf_counter()
    bundle = load_bundle(models_dir, task, version)
    load_s = time.perf_counter() - start
    issues, _ = read_labelled(Path(args.data))
    bundle.predict(issues[:8])  # warm up (lazy encoders, caches of the allocator)

    single = []
    for issue in issues[: args.single]:
        t = time.perf_counter()
        bundle.predict([issue])
        single.append((time.perf_counter() - t) * 1000)

    batches = {}
    rest = issues[args.single:]  # issues the single-issue loop did not see: no model cache helps
    for size in (32, 256):
        unseen, rest = rest[:args.batch_issues], rest[args.batch_issues:] if args.batch_issues else rest
        n = (len(unseen) // size) * size
        t = time.perf_counter()
        for i in range(0, n, size):
            bundle.predict(unseen[i:i + size])
        batches[str(size)] = round(n / (time.perf_counter() - t), 1)

    fresh = []
    issue = issues[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(args.fresh):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", ONE_SHOT, str(models_dir), task, version, issue.repo,
                        issue.title, issue.body], check=True, capture_output=True, env=env, cwd=ROOT)
        fresh.append(time.perf_counter() - t)
    fresh_ms = statistics.median(fresh) * 1000
    broker = through_broker(bundle, models_dir, issues, args.broker_tasks) if args.broker_tasks else None
    p50 = statistics.median(single)

    print(json.dumps({
        "model": f"{task}/{version}", "kind": bundle.manifest.get("metrics", {}).get("kind", "light"),
        "model_file_bytes": (path / bundle.manifest["model_file"]).stat().st_size,
        "load_seconds": round(load_s, 3),
        "single_issue_ms": {"p50": round(p50, 3), "p99": round(percentile(single, 99), 3),
                            "n": len(single)},
        "batch_issues_per_second": batches,
        "through_broker": broker,
        "fresh_process_per_issue_ms": round(fresh_ms, 1),
        "fresh_process_vs_in_process_single": round(fresh_ms / p50, 1),
        "cpu_count": os.cpu_count(),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
