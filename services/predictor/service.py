"""A predictor, declared: one task's messages in micro-batches, scored with its model bundle."""

from __future__ import annotations

from pathlib import Path

from services.predictor.serving.bundle import Bundle, load_bundle
from services.predictor.serving.worker import Predictor
from shared import topology
from shared.broker import Broker, ConsumeOptions
from shared.service import Consumer, Service

# Predict calls of up to 256 issues: the model scores many more issues a second in batches than one
# at a time (docs/benchmarks.md); a partial batch waits at most 5 ms for more. A message may be a
# batch of up to 50 tasks (a replay's, a busy dispatcher's), so 256 messages in flight hold at most
# 12,800 issues.
OPTIONS = ConsumeOptions(prefetch=256, max_batch=128, max_wait=0.005)


def bundle(models_dir: Path, task: str, model: str | None = None) -> Bundle:
    """The bundle to serve: refused (one line) before anything connects, when missing or tampered with."""
    return load_bundle(models_dir, task, model)


def declare(broker: Broker, models_dir: Path, default: Bundle, options: ConsumeOptions = OPTIONS) -> Service:
    task = default.task.name
    worker = Predictor(task, models_dir, broker, default)
    return Service(f"predictor-{task}", tasks=(task,),
                   consumers=(Consumer(topology.task_queue(task).name, worker.handle, options, threads=2),))
