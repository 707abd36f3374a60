"""Does a post-hoc decision rule lift the issuetype model's NLBSE'24 score? Cross-validation on the
*train* split only; the test split is never read here.

The rule: per-class additive offsets on the log-probabilities, ``argmax(log p + delta)``, ``delta``
chosen to maximise the metric (mean over repositories of the per-repository macro F1) on
out-of-fold predictions. One vector for all repositories (``global``), or one per repository
(``per-repo``, each chosen on that repository's issues only, for its own macro F1).

Out-of-fold probabilities come from the same 5 folds as ``wcml train`` (stratified by repository and
label, seed 0), one ``make_model(task, kind)`` (a ``RepoRouter``) per fold. The offsets applied to
outer fold k are never chosen on fold k's labels; two protocols:

- ``nested`` (the one reported): inside the 4 other folds, an inner 4-fold CV (same stratification)
  gives out-of-fold probabilities of models that never saw fold k; the offsets are chosen on those and
  applied to the outer model's probabilities on fold k. 20 extra fits per kind.
- ``cross-fit`` (cheaper, shown beside it): chosen on the outer out-of-fold probabilities of the 4
  other folds (their models saw fold k's issues in training, not its predictions).
- ``in-sample`` (optimistic, for reference only): chosen and scored on all out-of-fold predictions.

The adjusted predictions of the 5 folds are pooled and scored like the unadjusted ones, so every row
of the table is comparable with the ``none`` row (which reproduces bench/predictor_search.py).
``blend``: the mean of the light and heavy probabilities (fixed 1:1, nothing chosen).

    WCML_EMBEDDING_CACHE=var/embeddings nice -n 19 .venv/bin/python bench/decision_offsets.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from services.predictor.routing import model_inputs
from services.predictor.tasks import get_task
from services.predictor.training.datasets import read_labelled
from services.predictor.training.training import make_model

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared/datasets/nlbse24/issues_train.csv"
FOLDS, INNER_FOLDS, SEED = 5, 4, 0
GRID = np.round(np.arange(-2.0, 2.0001, 0.05), 2)  # offsets of classes 1.. against class 0, log units


# -- the metric, vectorised over candidate predictions ---------------------------------------------

def macro_f1(truth: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Macro F1 over ``k`` labels (zero_division=0, as ``scoring.per_repo``); ``pred`` (..., n)."""
    f1 = []
    for c in range(k):
        t, p = truth == c, pred == c
        tp = (p & t).sum(axis=-1)
        denom = p.sum(axis=-1) + t.sum()
        f1.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
    return np.mean(f1, axis=0)


def repo_scores(truth: np.ndarray, pred: np.ndarray, repos: np.ndarray, names: list[str], k: int
                ) -> dict[str, float]:
    return {r: float(macro_f1(truth[repos == r], pred[..., repos == r], k)) for r in names}


def candidates(k: int) -> np.ndarray:
    """Every offset vector on the grid (class 0 fixed at 0), (G, k)."""
    rest = np.array(list(product(GRID, repeat=k - 1)))
    return np.hstack([np.zeros((len(rest), 1)), rest])


def choose(logp: np.ndarray, truth: np.ndarray, repos: np.ndarray, k: int, chunk: int = 800
           ) -> np.ndarray:
    """The offset vector that maximises the mean per-repository macro F1 of ``argmax(logp + delta)``;
    ties go to the smallest offsets (the plateau's point nearest no change)."""
    deltas = candidates(k)
    names = sorted(set(repos))
    best, best_score = np.zeros(k), -1.0
    order = np.argsort(np.linalg.norm(deltas, axis=1), kind="stable")  # ties: smallest norm first
    deltas = deltas[order]
    for start in range(0, len(deltas), chunk):
        d = deltas[start:start + chunk]
        pred = (logp[None, :, :] + d[:, None, :]).argmax(axis=2)  # (g, n)
        score = np.mean([macro_f1(truth[repos == r], pred[:, repos == r], k) for r in names], axis=0)
        i = int(score.argmax())
        if score[i] > best_score + 1e-12:
            best, best_score = d[i], float(score[i])
    return best


def offsets_for(logp, truth, repos, k, per_repo: bool) -> dict[str, np.ndarray]:
    if not per_repo:
        return {"*": choose(logp, truth, repos, k)}
    return {r: choose(logp[repos == r], truth[repos == r], repos[repos == r], k) for r in sorted(set(repos))}


def apply(logp: np.ndarray, repos: np.ndarray, offsets: dict[str, np.ndarray]) -> np.ndarray:
    shift = np.array([offsets.get(r, offsets.get("*")) for r in repos])
    return (logp + shift).argmax(axis=1)


# -- out-of-fold probabilities ---------------------------------------------------------------------

def folds(strata: list[str], n: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedKFold(k, shuffle=True, random_state=SEED).split(np.zeros(n), strata))


def oof(model, inputs: list, y: np.ndarray, classes: list[str], splits, index: np.ndarray) -> np.ndarray:
    """Out-of-fold probabilities over ``index`` (positions into inputs/y), columns in ``classes``."""
    proba = np.zeros((len(index), len(classes)))
    for fit, test in splits:
        fitted = clone(model).fit([inputs[i] for i in index[fit]], y[index[fit]])
        columns = np.searchsorted(classes, np.asarray(fitted.classes_, dtype=object))
        proba[np.ix_(test, columns)] = fitted.predict_proba([inputs[i] for i in index[test]])
    return proba


def probabilities(kind: str, task, inputs, y, strata, classes, cache: Path, inner: bool, key: str
                  ) -> tuple[np.ndarray, list[np.ndarray] | None, float]:
    """Outer OOF probabilities (n, k) and, with ``inner``, per outer fold the inner OOF probabilities
    over that fold's training issues; cached on disk by data fingerprint and kind."""
    path = cache / f"{kind}-{key}.npz"
    if path.exists():
        saved = np.load(path)
        inner_p = [saved[f"inner{f}"] for f in range(FOLDS)] if inner and "inner0" in saved else None
        if not inner or inner_p is not None:
            return saved["outer"], inner_p, float(saved["seconds"])
    start = time.perf_counter()
    n = len(y)
    model = make_model(task, kind)
    outer_splits = folds(strata, n, FOLDS)
    outer = oof(model, inputs, y, classes, outer_splits, np.arange(n))
    print(f"{kind}: outer OOF in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    inner_p = None
    if inner:
        inner_p = []
        for f, (fit, _test) in enumerate(outer_splits):
            inner_p.append(oof(model, inputs, y, classes,
                               folds([strata[i] for i in fit], len(fit), INNER_FOLDS), fit))
            print(f"{kind}: inner OOF of outer fold {f} at {time.perf_counter() - start:.0f} s",
                  file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    cache.mkdir(parents=True, exist_ok=True)
    extra = {f"inner{f}": p for f, p in enumerate(inner_p)} if inner_p else {}
    np.savez(path, outer=outer, seconds=seconds, **extra)
    return outer, inner_p, seconds


# -- the evaluation --------------------------------------------------------------------------------

def evaluate(proba, inner_p, truth, repos, outer_splits, k, per_repo: bool) -> dict[str, dict]:
    """The pooled adjusted predictions' scores, per protocol, and the offsets chosen."""
    logp = np.log(np.clip(proba, 1e-12, 1.0))
    names = sorted(set(repos))
    out = {}
    for protocol in (["nested"] if inner_p is not None else []) + ["cross-fit"]:
        pred = np.empty(len(truth), dtype=int)
        chosen = []
        for f, (fit, test) in enumerate(outer_splits):
            if protocol == "nested":  # inner OOF over fold f's training issues, models that never saw f
                sel = (np.log(np.clip(inner_p[f], 1e-12, 1.0)), truth[fit], repos[fit])
            else:  # the other folds' outer OOF
                sel = (logp[fit], truth[fit], repos[fit])
            offsets = offsets_for(*sel, k, per_repo)
            pred[test] = apply(logp[test], repos[test], offsets)
            chosen.append({r: [round(float(v), 2) for v in d] for r, d in offsets.items()})
        out[protocol] = {**summary(repo_scores(truth, pred, repos, names, k)), "offsets": chosen}
    offsets = offsets_for(logp, truth, repos, k, per_repo)
    out["in-sample"] = {**summary(repo_scores(truth, apply(logp, repos, offsets), repos, names, k)),
                        "offsets": {r: [round(float(v), 2) for v in d] for r, d in offsets.items()}}
    return out


def summary(per_repo: dict[str, float]) -> dict:
    return {"mean": round(float(np.mean(list(per_repo.values()))), 4),
            "per_repo": {r: round(v, 4) for r, v in per_repo.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(TRAIN))
    parser.add_argument("--kinds", nargs="+", default=["light", "heavy"])
    parser.add_argument("--no-inner", action="store_true", help="skip the nested protocol's inner CV fits")
    parser.add_argument("--cache", default=str(ROOT / "var" / "decision-offsets"))
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    if "test" in Path(args.data).name:
        sys.exit("refusing to choose a decision rule on a test split")
    start = time.perf_counter()
    task = get_task("issuetype")
    issues, labels = read_labelled(Path(args.data))
    classes = sorted(set(labels))
    k = len(classes)
    y = np.array(labels, dtype=object)
    truth = np.searchsorted(classes, y)
    repos = np.array([i.repo for i in issues], dtype=object)
    strata = [f"{r}\n{label}" for r, label in zip(repos, labels, strict=True)]
    rows = [[i.repo, task.text(i), label] for i, label in zip(issues, labels, strict=True)]
    key = hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:12]
    outer_splits = folds(strata, len(y), FOLDS)

    probas, fit_seconds = {}, {}
    for kind in args.kinds:
        inputs = model_inputs(task, make_model(task, kind), issues)
        probas[kind] = probabilities(kind, task, inputs, y, strata, classes, Path(args.cache),
                                     not args.no_inner, key)
        fit_seconds[kind] = round(probas[kind][2], 1)
    if {"light", "heavy"} <= set(probas):
        light, heavy = probas["light"], probas["heavy"]
        inner = (None if light[1] is None or heavy[1] is None
                 else [(a + b) / 2 for a, b in zip(light[1], heavy[1], strict=True)])
        probas["blend"] = ((light[0] + heavy[0]) / 2, inner, 0.0)

    names = sorted(set(repos))
    results, rows = {}, []
    for variant, (proba, inner_p, _s) in probas.items():
        none = summary(repo_scores(truth, proba.argmax(axis=1), repos, names, k))
        results[variant] = {"none": none}
        rows.append((variant, "none", "-", none))
        for rule, per_repo in (("global", False), ("per-repo", True)):
            results[variant][rule] = evaluate(proba, inner_p, truth, repos, outer_splits, k, per_repo)
            for protocol, row in results[variant][rule].items():
                rows.append((variant, rule, protocol, row))

    short = [n.split("/")[-1][:10] for n in names]
    print(f"{'model':7} {'rule':9} {'protocol':10} {'mean':>6} {'gain':>7} "
          + " ".join(f"{s:>10}" for s in short))
    for variant, rule, protocol, row in rows:
        gain = row["mean"] - results[variant]["none"]["mean"]
        print(f"{variant:7} {rule:9} {protocol:10} {row['mean']:6.4f} {gain:+7.4f} "
              + " ".join(f"{row['per_repo'][n]:10.4f}" for n in names))
    elapsed = round(time.perf_counter() - start, 1)
    print(f"total {elapsed} s (fits: {fit_seconds}; cached fits count their original time)")
    if not args.no_save:
        from bench.common import save  # imports the test harness: only when saving

        save("decision-offsets", {
            "data": "nlbse24/issues_train.csv (train split only; the test split is not read)",
            "metric": "mean over repositories of per-repository macro F1, pooled out-of-fold predictions",
            "folds": f"{FOLDS} outer (stratified by repository and label, seed {SEED}, as wcml train); "
                     f"nested: {INNER_FOLDS} inner folds inside each outer fold's training issues",
            "grid": f"offsets of {classes[1:]} against {classes[0]}: {GRID[0]}..{GRID[-1]} step 0.05 "
                    "(log-probability units); ties to the smallest offsets",
            "classes": classes, "fit_seconds": fit_seconds, "seconds": elapsed, "results": results,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
