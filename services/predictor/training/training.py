"""Train a task's model with cross-validated metrics, and evaluate an installed bundle."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from services.predictor.kinds import make_fallback, make_pipeline, shared_features
from services.predictor.routing import RepoRouter, model_inputs
from services.predictor.serving.bundle import Bundle
from services.predictor.tasks import Task
from services.predictor.training.scoring import format_report, score
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


def make_model(task: Task, kind: str = "light") -> Any:
    """The task's pipeline, behind a per-repository router when the task asks for one, after the
    kind's shared features (fitted once on all issues) when it has them."""
    pipeline = make_pipeline(task, kind)
    shared = shared_features(kind)
    if task.per_repo:
        return RepoRouter(pipeline, others_weight=task.others_weight(kind), shared=shared,
                          fallback=make_fallback(task, kind))
    return pipeline if shared is None else Pipeline([("shared", shared), ("model", pipeline)])


def train(task: Task, issues: list[IssueSnapshot], labels: list[str], *, kind: str = "light",
          seed: int = 0, progress: Callable[[Iterable], Iterable] | None = None, model: Any = None
          ) -> tuple[Any, dict[str, Any]]:
    """Stratified k-fold CV (k = min(5, smallest class), at least 2) for the metrics, then fit on all.

    Folds are stratified by (repository, label) for a routing task, so every repository's sub-model
    is cross-validated on its own issues as the NLBSE protocol scores it. ``progress`` wraps the
    k + 1 fits (a progress bar: a tuned model's fits take long). ``model``: an unfitted model to use
    instead of ``make_model(task, kind)``."""
    counts = _check(task, issues, labels)
    folds = max(2, min(MAX_FOLDS, min(counts.values())))
    model = make_model(task, kind) if model is None else model
    inputs = model_inputs(task, model, issues)
    strata = [f"{i.repo}\n{label}" for i, label in zip(issues, labels, strict=True)]
    if min(Counter(strata).values()) < folds:
        strata = list(labels)
    classes = sorted(counts)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = np.zeros((len(issues), len(classes)))
    y = np.asarray(labels, dtype=object)
    fitted = None
    for split in (progress or iter)([*cv.split(np.zeros(len(issues)), strata), None]):
        if split is None:  # the last step: the model itself, on everything
            fitted = clone(model).fit(inputs, y)
            continue
        fit_idx, test_idx = split
        fold = clone(model).fit([inputs[i] for i in fit_idx], y[fit_idx])
        columns = np.searchsorted(classes, np.asarray(fold.classes_, dtype=object))
        proba[np.ix_(test_idx, columns)] = fold.predict_proba([inputs[i] for i in test_idx])
    repos = [i.repo for i in issues] if task.per_repo else None
    metrics = {"task": task.name, "kind": kind, "cv_folds": folds,
               **score(classes, labels, proba, repos)}
    return fitted, metrics


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
    repos = [i.repo for i in issues] if isinstance(bundle.pipeline, RepoRouter) else None
    return {"task": bundle.task.name, "model_version": bundle.version,
            **score(known, labels, proba, repos)}


__all__ = ["TrainingError", "evaluate", "fingerprint", "format_report", "make_model", "train"]
