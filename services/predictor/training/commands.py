"""The offline commands: ``wcml dataset build``, ``wcml train`` and ``wcml evaluate``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from services.predictor.kinds import default_kind
from services.predictor.serving.bundle import load_bundle, write_bundle
from services.predictor.tasks import Task, get_task
from services.predictor.training import datasets, loro
from services.predictor.training.scoring import format_repo_table
from services.predictor.training.training import evaluate as evaluate_bundle
from services.predictor.training.training import fingerprint, format_report, make_model
from services.predictor.training.training import train as train_model
from shared.errors import UserError
from shared.messages import EventEnvelope


def dataset_build(task_name: str, out: Path, *, envelopes: Iterable[EventEnvelope] | None = None,
                  total: int | None = None, export: Path | None = None, quiet: bool = False) -> int:
    """Labelled issues from logged ``issues`` events (``envelopes``) or a GitHub API export."""
    task = get_task(task_name)
    if envelopes is not None:
        read = tqdm(envelopes, total=total, desc="reading the event log", unit="event", disable=quiet)
        histories = datasets.histories_from_log(read)
    else:
        histories = list(datasets.read_export(Path(export)))
    examples, report = datasets.build(task, histories, lambda items: tqdm(
        items, desc=f"labelling ({task.name})", unit="issue", disable=quiet))
    datasets.write_dataset(out, examples)
    counts = {label: sum(1 for _, got in examples if got == label) for label in task.labels}
    print(f"{report.examples} labelled issue(s) from {report.issues} ({report.skipped} left out by the "
          f"{task.name} rules) -> {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def chosen_kind(task: Task, kind: str | None) -> str:
    """The kind named, else the task's default (``kinds.default_kind``), saying so when it is not the
    one the task prefers."""
    if kind:
        return kind
    kind, why = default_kind(task)
    if why:
        print(f"note: {why}", file=sys.stderr)
    return kind


def train(task_name: str, data: Path, models_dir: Path, *, kind: str | None = None,
          version: str | None = None) -> int:
    task = get_task(task_name)
    kind = chosen_kind(task, kind)
    issues, labels = datasets.read_labelled(data)
    print(f"training {task.name} ({kind}) on {len(issues)} issues from {data}, with cross-validation",
          file=sys.stderr)
    pipeline, metrics = train_model(task, issues, labels, kind=kind, progress=lambda fits: tqdm(
        fits, desc=f"training {task.name}", unit="fit"))
    path = write_bundle(models_dir, task, pipeline, data_size=len(issues), metrics=metrics,
                        data_fingerprint=fingerprint([task.text(i) for i in issues], labels),
                        data_source=str(data), version=version)
    print(format_report(metrics))
    if metrics.get("unseen"):
        print("\nrepositories it was not trained on: the pooled fallback, leave-one-repository-out")
        print("\n".join(format_repo_table(metrics["unseen"]["per_repo"])[1:]))
    print(f"\nmodel bundle -> {path}")
    return 0


def evaluate(task_name: str, data: Path, models_dir: Path, *, model: str | None = None,
             as_json: bool = False, kind: str | None = None, leave_one_repo_out: bool = False) -> int:
    """Score a bundle, named by version or as a bundle directory ``<models>/<task>/<version>``; or,
    with ``leave_one_repo_out``, a fresh model of ``kind`` and the pooled baseline, repository by
    repository (``loro``)."""
    if leave_one_repo_out:
        return evaluate_loro(task_name, data, kind=kind, as_json=as_json)
    version = model
    if model and Path(model).is_dir():
        bundle_dir = Path(model).resolve()
        models_dir, version = bundle_dir.parent.parent, bundle_dir.name
        if bundle_dir.parent.name != task_name:
            raise UserError(f"{model} is not a bundle of task {task_name}")
    bundle = load_bundle(models_dir, task_name, version)
    issues, labels = datasets.read_labelled(data)
    report = evaluate_bundle(bundle, issues, labels)
    print(json.dumps(report, indent=2) if as_json else format_report(report))
    return 0


def evaluate_loro(task_name: str, data: Path, *, kind: str | None = None, as_json: bool = False) -> int:
    """Leave-one-repository-out: ``kind`` (as ``wcml train`` builds it) beside the pooled baseline."""
    task = get_task(task_name)
    kind = chosen_kind(task, kind)
    issues, labels = datasets.read_labelled(data)
    candidates = {kind: lambda: make_model(task, kind), loro.BASELINE: loro.baseline_model}
    print(f"leave-one-repository-out on {len(issues)} issues from {data}: {kind} and {loro.BASELINE}",
          file=sys.stderr)
    report = loro.leave_one_repo_out(task, issues, labels, candidates, progress=lambda steps: tqdm(
        steps, desc="held-out fits", unit="fit"))
    print(json.dumps(report, indent=2) if as_json else loro.format_loro(report))
    return 0
