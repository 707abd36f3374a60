"""First-run models, so a fresh install predicts out of the box: a packaged starter bundle where the
project ships one (``starter/<task>/<version>/``, trained on public data, its data card beside it),
else a demo model trained from the bundled, invented demo data."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from services.predictor.serving.bundle import (
    MANIFEST_FILE,
    BundleError,
    list_versions,
    load_bundle,
    write_bundle,
)
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


DATA_CARD = "DATA_CARD.md"


def starter_bundle(task_name: str) -> Path | None:
    """The packaged starter bundle of a task (the newest, if several), or None."""
    root = Path(str(resources.files("services.predictor.training"))) / "starter" / task_name
    versions = sorted(p for p in root.glob("*") if (p / MANIFEST_FILE).is_file()) if root.is_dir() else []
    return versions[-1] if versions else None


def install_starter(models_dir: Path, task_name: str) -> Path | None:
    """Copy the packaged starter bundle (and its data card) into ``models_dir``, verified as any bundle
    is on load; None when the task has none."""
    source = starter_bundle(task_name)
    if source is None:
        return None
    task_dir = Path(models_dir) / task_name
    task_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{source.name}-", dir=task_dir))
    try:
        for item in source.iterdir():
            shutil.copy2(item, tmp / item.name)
        card = source.parent / DATA_CARD
        if card.is_file():
            shutil.copy2(card, tmp / DATA_CARD)
        os.rename(tmp, task_dir / source.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        load_bundle(models_dir, task_name, source.name)  # sha256, allow-list, this scikit-learn: now
    except BundleError:
        shutil.rmtree(task_dir / source.name, ignore_errors=True)
        raise
    return task_dir / source.name


def ensure_demo_bundles(models_dir: Path, task_names: Iterable[str],
                        announce: Callable[[str], None] = print, *, starter: bool = True) -> list[str]:
    """Install a first-run model for each task that has none: the packaged starter bundle where there is
    one (unless ``starter`` is False), else a demo model trained from the demo data; returns the tasks
    it installed a model for."""
    installed = []
    for name in task_names:
        if list_versions(models_dir, name):
            continue
        task = get_task(name)
        try:
            path = install_starter(models_dir, name) if starter else None
        except (OSError, BundleError) as exc:
            if list_versions(models_dir, name):  # another process installed one meanwhile
                continue
            announce(f"the packaged starter model for {name} does not install here ({exc}); "
                     f"a demo model instead")
            path = None
        if path is not None:
            announce(f"no model installed for {name}: installed the packaged starter model (trained on "
                     f"public issues; data card: {path / DATA_CARD}) -> {path}")
            installed.append(name)
            continue
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
        installed.append(name)
    return installed
