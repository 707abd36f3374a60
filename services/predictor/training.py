"""Train a task's model with cross-validated metrics, and evaluate an installed bundle."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from services.predictor.bundle import Bundle
from services.predictor.scoring import format_report, score
from services.predictor.tasks import Task
from shared.errors import UserError
from shared.messages import IssueSnapshot

MAX_FOLDS = 5


class TrainingError(UserError, ValueError):
    """Training data that cannot give a trustworthy model (missing labels, too few examples)."""


def fingerprint(texts: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 over the sorted (text, label) pairs: the same data in any order gives the same value."""
    digest = hashlib.sha256()
    for pair in sorted(zip(texts, labels, strict=True)):
        digest.update(json.dumps(pair, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _check(task: Task, issues: Sequence[IssueSnapshot], labels: Sequence[str]) -> Counter:
    if len(issues) != len(labels):
        raise TrainingError(f"{task.name}: {len(issues)} issues but {len(labels)} labels")
    counts = Counter(labels)
    unknown = sorted(set(counts) - set(task.labels))
    if unknown:
        raise TrainingError(f"{task.name}: unknown label(s) {', '.join(unknown)} (task labels: "
                            f"{', '.join(task.labels)})")
    scarce = [f"{label} ({counts[label]})" for label in task.labels if counts[label] < 2]
    if scarce:
        raise TrainingError(f"{task.name}: need at least 2 examples of every label, have {', '.join(scarce)}")
    return counts


def train(task: Task, issues: list[IssueSnapshot], labels: list[str], *, seed: int = 0
          ) -> tuple[Any, dict[str, Any]]:
    """Stratified k-fold CV (k = min(5, smallest class), at least 2) for the metrics, then fit on all."""
    counts = _check(task, issues, labels)
    folds = max(2, min(MAX_FOLDS, min(counts.values())))
    texts = [task.text(issue) for issue in issues]
    classes = sorted(counts)  # cross_val_predict orders probability columns this way
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(task.make_pipeline(), texts, labels, cv=cv, method="predict_proba")
    metrics = {"task": task.name, "cv_folds": folds, **score(classes, labels, proba)}
    pipeline = task.make_pipeline().fit(texts, labels)
    return pipeline, metrics


def evaluate(bundle: Bundle, issues: Sequence[IssueSnapshot], labels: Sequence[str]) -> dict[str, Any]:
    """Score an installed bundle on labelled issues, through the same ``predict`` the worker uses."""
    known = bundle.labels
    unknown = sorted(set(labels) - set(known))
    if unknown:
        raise TrainingError(f"{bundle.task.name}: label(s) {', '.join(unknown)} unknown to model "
                            f"{bundle.version} (knows {', '.join(known)})")
    if len(issues) != len(labels) or not issues:
        raise TrainingError(f"{bundle.task.name}: need as many labels as issues, and at least one issue")
    scored = bundle.predict(issues)
    proba = np.array([[s.probabilities[label] for label in known] for s in scored])
    return {"task": bundle.task.name, "model_version": bundle.version, **score(known, labels, proba)}


__all__ = ["TrainingError", "evaluate", "fingerprint", "format_report", "train"]
