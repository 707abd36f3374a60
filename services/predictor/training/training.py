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

from services.predictor import calibration
from services.predictor.calibration import TRAINED, UNSEEN
from services.predictor.kinds import make_fallback, make_pipeline, shared_features
from services.predictor.routing import RepoRouter, model_inputs
from services.predictor.serving.bundle import Bundle
from services.predictor.tasks import Task
from services.predictor.training.loro import LoroError, held_out_repos
from services.predictor.training.scoring import format_report, promises_kept, score
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
    is cross-validated on its own issues as the NLBSE protocol scores it. A router's pooled fallback is
    also scored leave-one-repository-out (``metrics["unseen"]``: what a repository in no training set
    gets). Both sets of held-out predictions calibrate the bundle (``metrics["calibration"]``, for
    ``write_bundle``; ``calibration``). ``progress`` wraps the fits (a progress bar: a tuned model's fits
    take long). ``model``: an unfitted model to use instead of ``make_model(task, kind)``."""
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
    repos = np.array([i.repo for i in issues], dtype=object)
    held_out = _unseen_repos(model, issues, y)
    unseen = np.zeros((len(issues), len(classes)))
    steps = [*(("fold", split) for split in cv.split(np.zeros(len(issues)), strata)),
             *(("unseen", repo) for repo in held_out), ("all", None)]
    fitted = None
    for step, split in (progress or iter)(steps):
        if step == "all":  # the last step: the model itself, on everything
            fitted = clone(model).fit(inputs, y)
        elif step == "unseen":  # the fallback, trained without this repository, scored on it
            held = repos == split
            texts = np.array([x[1] for x in inputs], dtype=object)
            fallback = clone(model.fallback if model.fallback is not None else model.estimator)
            fallback.fit(list(texts[~held]), y[~held])
            unseen[held] = _aligned(classes, fallback, list(texts[held]))
        else:
            fit_idx, test_idx = split
            fold = clone(model).fit([inputs[i] for i in fit_idx], y[fit_idx])
            proba[test_idx] = _aligned(classes, fold, [inputs[i] for i in test_idx])
    truth = np.searchsorted(classes, y)
    metrics = {"task": task.name, "kind": kind, "cv_folds": folds,
               **score(classes, labels, proba, list(repos) if task.per_repo else None),
               "calibration": {TRAINED: calibration.fit(classes, proba, truth).to_json()}}
    if held_out:
        mask = np.isin(repos, held_out)
        metrics["unseen"] = {"protocol": "leave-one-repository-out (the pooled fallback)",
                             **score(classes, list(y[mask]), unseen[mask], list(repos[mask]))}
        metrics["calibration"][UNSEEN] = calibration.fit(classes, unseen[mask], truth[mask]).to_json()
    return fitted, metrics


def _unseen_repos(model: Any, issues: Sequence[IssueSnapshot], y: np.ndarray) -> list[str]:
    """The repositories a router's fallback is scored on, each left out of its training in turn: those
    ``loro`` scores. None (empty) for a model that does not route, or whose fallback reads features fitted on
    all repositories (the tuned encoder: tuning it once per repository costs an hour each)."""
    if not isinstance(model, RepoRouter) or model.shared is not None:
        return []
    try:
        scored, _ = held_out_repos(issues, list(y))
    except LoroError:  # one repository: nothing to leave out
        return []
    repos = np.array([i.repo for i in issues], dtype=object)
    return [repo for repo in scored if len(set(y[repos != repo])) >= 2]


def _aligned(classes: list[str], model: Any, inputs: list) -> np.ndarray:
    """``model``'s probabilities with a column per class of ``classes`` (0 for those it never saw)."""
    out = np.zeros((len(inputs), len(classes)))
    columns = np.searchsorted(classes, np.asarray(model.classes_, dtype=object))
    out[:, columns] = model.predict_proba(inputs)
    return out


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
            **score(known, labels, proba, repos), "promises": promises_kept(labels, scored)}


__all__ = ["TrainingError", "evaluate", "fingerprint", "format_report", "make_model", "train"]
