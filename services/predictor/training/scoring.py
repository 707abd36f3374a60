"""Quality figures for a classifier, from true labels and predicted probabilities, and their report.

One function serves both training (out-of-fold probabilities) and evaluation (a bundle on held-out
issues), so the two reports are comparable line by line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.97)
PRECISION_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)  # an actions rule's min_precision


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def threshold_table(labels: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray,
                    thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, Any]]:
    """What acting only on confident predictions gives: the share classified, precision (correct among
    classified) and recall (correct classified among all), overall and per label."""
    rows = []
    for t in thresholds:
        kept = confidence >= t
        correct = kept & (y_pred == y_true)
        per_label = {label: {"precision": _ratio(int((correct & (y_pred == label)).sum()),
                                                  int((kept & (y_pred == label)).sum())),
                             "recall": _ratio(int((correct & (y_true == label)).sum()),
                                              int((y_true == label).sum()))}
                     for label in labels}
        n_kept, n_correct = int(kept.sum()), int(correct.sum())
        rows.append({"threshold": t, "classified": n_kept, "share": _ratio(n_kept, len(y_true)),
                     "precision": _ratio(n_correct, n_kept),
                     "recall": _ratio(n_correct, len(y_true)), "per_label": per_label})
    return rows


def promises_kept(y_true: Sequence[str], scored: Sequence[Any],
                  levels: Sequence[float] = PRECISION_LEVELS) -> list[dict[str, Any]]:
    """Whether the precision a bundle promises holds on these issues, as an actions policy would use
    it: for each ``min_precision`` level, the predictions that promise at least that (those a rule
    with that ``min_precision`` acts on) and the precision observed among them here. Empty for a
    bundle without calibration."""
    if all(s.precision is None for s in scored):
        return []
    rows = []
    for level in levels:
        acted = [s.label == truth for s, truth in zip(scored, y_true, strict=True)
                 if s.precision is not None and s.precision >= level]
        rows.append({"min_precision": level, "acted": len(acted), "share": _ratio(len(acted), len(scored)),
                     "observed": _ratio(sum(acted), len(acted))})
    return rows


def per_repo(labels: Sequence[str], truth: np.ndarray, pred: np.ndarray, repos: Sequence[str]
             ) -> dict[str, Any]:
    """The NLBSE'24 table: macro F1 per repository, and their unweighted mean."""
    repos = np.asarray(repos, dtype=object)
    table = {}
    for repo in sorted(set(repos)):
        mask = repos == repo
        table[repo] = {"n": int(mask.sum()), "macro_f1": round(float(f1_score(
            truth[mask], pred[mask], labels=labels, average="macro", zero_division=0)), 4)}
    mean = float(np.mean([row["macro_f1"] for row in table.values()])) if table else 0.0
    return {"repos": table, "mean_macro_f1": round(mean, 4)}


def score(labels: Sequence[str], y_true: Sequence[str], proba: np.ndarray,
          repos: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, macro F1, per-label P/R/F1, confusion matrix and threshold table; JSON-ready.
    ``proba`` columns follow ``labels``. With ``repos``, also the per-repository table."""
    labels = [str(label) for label in labels]
    truth = np.asarray(y_true, dtype=object)
    pred = np.asarray(labels, dtype=object)[proba.argmax(axis=1)]
    p, r, f, support = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    extra = {"per_repo": per_repo(labels, truth, pred, repos)} if repos is not None else {}
    return {
        "n": len(truth),
        "accuracy": round(float(accuracy_score(truth, pred)), 4),
        "macro_f1": round(float(f1_score(truth, pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_label": {label: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                              "f1": round(float(f[i]), 4), "support": int(support[i])}
                      for i, label in enumerate(labels)},
        "confusion": {"labels": labels,
                      "matrix": confusion_matrix(truth, pred, labels=labels).tolist()},
        "thresholds": threshold_table(labels, truth, pred, proba.max(axis=1)),
        **extra,
    }


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def format_report(report: dict[str, Any]) -> str:
    """A plain-text report: summary line, per-label table, confusion matrix, threshold table."""
    labels = list(report["per_label"])
    width = max(12, *(len(label) for label in labels)) + 2
    head = [f"task {report['task']}" if report.get("task") else "",
            f"model {report['model_version']}" if report.get("model_version") else "",
            f"{report['n']} issues",
            f"{report['cv_folds']}-fold cross-validation" if report.get("cv_folds") else ""]
    lines = [", ".join(h for h in head if h),
             f"accuracy {_fmt(report['accuracy'])}  macro F1 {_fmt(report['macro_f1'])}", "",
             f"{'label':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, m in report["per_label"].items():
        lines.append(f"{label:<{width}}{_fmt(m['precision']):>10}{_fmt(m['recall']):>10}"
                     f"{_fmt(m['f1']):>10}{m['support']:>10}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * width + "".join(f"{label:>{width}}" for label in labels)]
    for label, row in zip(report["confusion"]["labels"], report["confusion"]["matrix"], strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{n:>{width}}" for n in row))
    per_label_heads = "".join(f"{label[:16] + ' P/R':>24}" for label in labels)
    lines += ["", "confidence threshold (act only when confidence >= threshold)",
              f"{'threshold':<11}{'classified':>11}{'share':>8}{'precision':>11}{'recall':>8}"
              + per_label_heads]
    for row in report["thresholds"]:
        cells = "".join(f"{_fmt(m['precision']) + ' / ' + _fmt(m['recall']):>24}"
                        for m in row["per_label"].values())
        lines.append(f"{'>= ' + format(row['threshold'], 'g'):<11}{row['classified']:>11}"
                     f"{_fmt(row['share'], True):>8}{_fmt(row['precision']):>11}{_fmt(row['recall']):>8}"
                     + cells)
    if report.get("per_repo"):
        lines += ["", *format_repo_table(report["per_repo"])]
    if report.get("promises"):
        lines += ["", "promised precision (measured in training) >= level: what a rule with that "
                      "min_precision acts on, and the precision it gets here",
                  f"{'level':<11}{'acted on':>11}{'share':>8}{'observed':>10}"]
        lines += [f"{'>= ' + format(r['min_precision'], 'g'):<11}{r['acted']:>11}{_fmt(r['share'], True):>8}"
                  f"{_fmt(r['observed']):>10}" for r in report["promises"]]
    return "\n".join(lines)


def format_repo_table(table: dict[str, Any]) -> list[str]:
    """Per-repository macro F1 and their mean (the NLBSE'24 score)."""
    width = max(12, *(len(repo) for repo in table["repos"])) + 2
    lines = ["per repository (NLBSE'24 protocol: macro F1 per repository, then the mean)",
             f"{'repository':<{width}}{'issues':>8}{'macro F1':>10}"]
    for repo, row in table["repos"].items():
        lines.append(f"{repo:<{width}}{row['n']:>8}{_fmt(row['macro_f1']):>10}")
    lines.append(f"{'mean':<{width}}{'':>8}{_fmt(table['mean_macro_f1']):>10}")
    return lines
