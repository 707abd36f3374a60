"""Leave-one-repository-out evaluation: how a model does on a repository it has never seen.

The NLBSE'24 protocol scores each repository with a model that was trained on that repository's own
issues; a team that installs this system runs it on a repository in no training set, where a
``RepoRouter`` has nothing to route to and its pooled fallback answers. Here, for each repository of a
multi-repository data set, the candidates are trained on all the other repositories and scored (macro
F1 over the task's labels) on the one left out; the table lists every held-out repository and the
unweighted mean, beside a plain pooled TF-IDF + logistic regression baseline trained on the same data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

from services.predictor.routing import model_inputs
from services.predictor.tasks import Task
from services.predictor.training.scoring import threshold_table
from shared.errors import UserError
from shared.messages import IssueSnapshot

BASELINE = "pooled-tfidf-lr"
MIN_HELD_OUT = 10  # fewer issues than this in a repository: its macro F1 would be noise; not scored


class LoroError(UserError, ValueError):
    """A data set that cannot be evaluated repository by repository (fewer than two repositories)."""


def baseline_model() -> Pipeline:
    """The yardstick: one TF-IDF (word 1-2 grams, a vocabulary) + logistic regression over all
    repositories' issues, library defaults otherwise; no routing, nothing tuned."""
    return Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                     ("classifier", LogisticRegression(max_iter=1000))])


def held_out_repos(issues: Sequence[IssueSnapshot], labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """(repositories to score, repositories only trained on): a repository is scored when it has at
    least ``MIN_HELD_OUT`` issues of two or more labels."""
    by_repo: dict[str, Counter] = {}
    for issue, label in zip(issues, labels, strict=True):
        by_repo.setdefault(issue.repo, Counter())[label] += 1
    if len(by_repo) < 2:
        raise LoroError(f"leave-one-repository-out needs issues from two or more repositories, "
                        f"the data has {len(by_repo)}")
    scored = sorted(r for r, c in by_repo.items() if sum(c.values()) >= MIN_HELD_OUT and len(c) >= 2)
    if not scored:
        raise LoroError(f"no repository has {MIN_HELD_OUT} or more issues of two or more labels to score")
    return scored, sorted(set(by_repo) - set(scored))


def leave_one_repo_out(task: Task, issues: Sequence[IssueSnapshot], labels: Sequence[str],
                       candidates: dict[str, Callable[[], Any]],
                       progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, Any]:
    """Train every candidate (a factory of fresh models) on all repositories but one, score it on that
    one, for each repository; JSON-ready: per repository its size and each candidate's macro F1, the
    per-candidate mean, and on how many repositories each candidate beats the baseline (if present)."""
    scored, unscored = held_out_repos(issues, labels)
    repos = np.array([i.repo for i in issues], dtype=object)
    y = np.asarray(labels, dtype=object)
    classes = sorted(set(task.labels) & set(labels))
    table: dict[str, dict[str, Any]] = {}
    confident: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    steps = [(repo, name) for repo in scored for name in candidates]
    for repo, name in (progress or iter)(steps):
        train_idx, test_idx = np.flatnonzero(repos != repo), np.flatnonzero(repos == repo)
        if len(set(y[train_idx])) < 2:
            raise LoroError(f"without {repo} the data has fewer than two labels to learn")
        model = candidates[name]()
        fit_on = [issues[i] for i in train_idx]
        model.fit(model_inputs(task, model, fit_on), y[train_idx])
        inputs = model_inputs(task, model, [issues[i] for i in test_idx])
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(inputs)
            predicted = np.asarray(model.classes_, dtype=object)[proba.argmax(axis=1)]
            confident.setdefault(name, []).append((y[test_idx], predicted, proba.max(axis=1)))
        else:
            predicted = model.predict(inputs)
        row = table.setdefault(repo, {"n": int(len(test_idx)), "train_n": int(len(train_idx))})
        row[name] = round(float(f1_score(y[test_idx], predicted, labels=classes, average="macro",
                                         zero_division=0)), 4)
    mean = {name: round(float(np.mean([table[r][name] for r in scored])), 4) for name in candidates}
    report: dict[str, Any] = {"task": task.name, "protocol": "leave-one-repository-out",
                              "models": list(candidates), "repos": table, "mean_macro_f1": mean,
                              "train_only_repos": unscored,
                              # what a confidence threshold means on repositories the model never saw
                              "thresholds": {name: _thresholds(classes, parts)
                                             for name, parts in confident.items()}}
    if BASELINE in candidates:
        report["wins_over_baseline"] = {
            name: sum(1 for r in scored if table[r][name] > table[r][BASELINE])
            for name in candidates if name != BASELINE}
    return report


def _thresholds(classes: list[str], parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list:
    """The threshold table over all held-out repositories' issues together."""
    truth, predicted, confidence = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return threshold_table(classes, truth, predicted, confidence)


def format_loro(report: dict[str, Any]) -> str:
    """The table: one row per held-out repository, one column per model, the mean, the wins."""
    models = report["models"]
    width = max(12, *(len(repo) for repo in report["repos"])) + 2
    col = max(10, *(len(m) for m in models)) + 2
    lines = [f"task {report['task']}: leave-one-repository-out (train on all repositories but one, "
             f"score the one left out; macro F1)",
             f"{'held out':<{width}}{'issues':>8}" + "".join(f"{m:>{col}}" for m in models)]
    for repo, row in report["repos"].items():
        lines.append(f"{repo:<{width}}{row['n']:>8}" + "".join(f"{row[m]:>{col}.3f}" for m in models))
    lines.append(f"{'mean':<{width}}{'':>8}"
                 + "".join(f"{report['mean_macro_f1'][m]:>{col}.3f}" for m in models))
    if report.get("thresholds"):
        lines += ["", "on the held-out repositories, acting only when confidence >= threshold: "
                      "precision (share of issues classified)"]
        named = list(report["thresholds"])
        lines.append(f"{'threshold':<{width}}{'':>8}" + "".join(f"{m:>{col + 8}}" for m in named))
        for i, row in enumerate(report["thresholds"][named[0]]):
            cells = []
            for m in named:
                r = report["thresholds"][m][i]
                cells.append(f"{'-' if r['precision'] is None else format(r['precision'], '.3f')} "
                             f"({r['share']:.0%})")
            lines.append(f"{'>= ' + format(row['threshold'], 'g'):<{width}}{'':>8}"
                         + "".join(f"{c:>{col + 8}}" for c in cells))
        lines.append("")
    for name, wins in report.get("wins_over_baseline", {}).items():
        lines.append(f"{name} beats {BASELINE} on {wins} of {len(report['repos'])} held-out repositories")
    if report["train_only_repos"]:
        lines.append(f"trained on, too small to score alone: {', '.join(report['train_only_repos'])}")
    return "\n".join(lines)


__all__ = ["BASELINE", "LoroError", "baseline_model", "format_loro", "held_out_repos", "leave_one_repo_out"]
