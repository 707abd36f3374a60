"""Demo models from the bundled, invented demo data, so a fresh install predicts out of the box."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from services.predictor.serving.bundle import BundleError, list_versions, write_bundle
from services.predictor.tasks import get_task
from services.predictor.training.training import fingerprint, train
from shared.errors import UserError
from shared.issues import snapshot_of_record
from shared.messages import IssueSnapshot


class NoDemoDataError(UserError, LookupError):
    """A task without bundled demo data: it needs a real model installed."""


def load_demo(task_name: str) -> tuple[list[IssueSnapshot], list[str]]:
    """The demo examples of a task (package data under ``demo_data/``), as snapshots and labels."""
    get_task(task_name)
    source = resources.files("services.predictor.training") / "demo_data" / f"{task_name}.jsonl"
    if not source.is_file():
        raise NoDemoDataError(f"no demo data for task {task_name}: install a model bundle for it")
    issues, labels = [], []
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        issues.append(snapshot_of_record(row))
        labels.append(row["label"])
    return issues, labels


def ensure_demo_bundles(models_dir: Path, task_names: Iterable[str],
                        announce: Callable[[str], None] = print) -> list[str]:
    """Train and install a demo bundle for each task that has none; returns the tasks it trained."""
    trained = []
    for name in task_names:
        if list_versions(models_dir, name):
            continue
        task = get_task(name)
        issues, labels = load_demo(name)
        pipeline, metrics = train(task, issues, labels)
        try:
            path = write_bundle(models_dir, task, pipeline, data_size=len(issues), metrics=metrics,
                                data_fingerprint=fingerprint([task.text(i) for i in issues], labels),
                                data_source="demo")
        except BundleError:
            if list_versions(models_dir, name):  # another process installed one meanwhile
                continue
            raise
        announce(f"no model installed for {name}: trained a demo model from the bundled demo data "
                 f"(not for real use) -> {path}")
        trained.append(name)
    return trained
