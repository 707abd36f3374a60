"""Does SetFit-style tuning of a sentence encoder help the issuetype model? CV on the NLBSE'24 *train*
split only, frozen and tuned side by side on the same folds (results: docs/predictor.md).

Per fold (5, stratified by repository and label): ``TunedEncoder`` (the tuned model's encoder) tunes the
encoder's top layers on the fold's training issues of all repositories. Then each repository's logistic
regression (its own issues, the others' at 0.05) is fitted on TF-IDF + frozen, tuned, or both embeddings,
and on the embeddings alone, and scored on the fold's held-out issues of that repository.

    WCML_EMBEDDING_CACHE=var/embeddings nice .venv/bin/python -m bench.encoder_tuning \
        [--encoder all-mpnet-base-v2|all-MiniLM-L6-v2] [--epochs 3 --lr 5e-5] [--folds 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from services.predictor.encoders import MINILM, MPNET
from services.predictor.tasks import get_task
from services.predictor.tasks.base import text_pipeline
from services.predictor.training.datasets import read_labelled
from services.predictor.tuned import TunedEncoder

TRAIN = Path(__file__).resolve().parents[1].parent / "shared/datasets/nlbse24/issues_train.csv"
OTHERS_WEIGHT = 0.05


def fit_score(texts, y, repos, fit, test, embeddings, weight, tfidf_too, preds):
    """Per repository: LR on (TF-IDF +) the embeddings, own issues and the others' at OTHERS_WEIGHT."""
    for repo in sorted(set(repos)):
        own, others = fit[repos[fit] == repo], fit[repos[fit] != repo]
        rows = np.concatenate([own, others])
        weights = np.concatenate([np.ones(len(own)), np.full(len(others), OTHERS_WEIGHT)])
        held_out = test[repos[test] == repo]
        tfidf = None
        if tfidf_too:
            tfidf = clone(text_pipeline().named_steps["features"]).fit([texts[i] for i in rows])
        for kind, parts in embeddings.items():
            def features(idx, parts=parts, tfidf=tfidf):
                sparse = [tfidf.transform([texts[i] for i in idx])] if tfidf is not None else []
                return hstack(sparse + [csr_matrix(e[idx] * weight) for e in parts]).tocsr()
            classifier = LogisticRegression(C=4, class_weight="balanced", solver="newton-cg", max_iter=1000)
            classifier.fit(features(rows), y[rows], sample_weight=weights)
            preds[kind][held_out] = classifier.predict(features(held_out))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", choices=(MPNET, MINILM), default=MPNET)
    parser.add_argument("--tuned-layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--folds", type=int, default=5, help="score only the first N of the 5 folds")
    parser.add_argument("--skip-folds", type=int, default=0, help="and not the first N of those")
    parser.add_argument("--weight", type=float, default=0.7, help="embedding weight beside TF-IDF")
    args = parser.parse_args()
    task = get_task("issuetype")
    issues, labels = read_labelled(TRAIN)
    texts = [task.text(i) for i in issues]
    repos = np.array([i.repo for i in issues], dtype=object)
    y = np.array(labels, dtype=object)
    encoder = TunedEncoder(args.encoder, args.tuned_layers, args.epochs, args.lr, args.batch)
    start = time.perf_counter()
    frozen = clone(encoder).set_params(epochs=0).fit(texts, y).transform(texts)
    print(json.dumps({"frozen_seconds": round(time.perf_counter() - start, 1)}), flush=True)
    strata = [f"{r}\n{label}" for r, label in zip(repos, y, strict=True)]
    kinds = ("frozen", "tuned", "both", "frozen alone", "tuned alone")
    preds = {kind: np.empty(len(y), dtype=object) for kind in kinds}
    scored = np.zeros(len(y), dtype=bool)
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(texts, strata)
    for fold, (fit, test) in enumerate(folds):
        if fold >= args.folds:
            break
        if fold < args.skip_folds:
            continue
        start = time.perf_counter()
        tuned = clone(encoder).fit([texts[i] for i in fit], y[fit]).transform(texts)
        fit_score(texts, y, repos, fit, test, {"frozen": [frozen], "tuned": [tuned], "both": [frozen, tuned]},
                  args.weight, True, preds)
        fit_score(texts, y, repos, fit, test, {"frozen alone": [frozen], "tuned alone": [tuned]}, 1.0, False,
                  preds)
        scored[test] = True
        print(json.dumps({"fold": fold, "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    result = {}
    for kind, pred in preds.items():
        per_repo = {r: round(float(f1_score(y[(repos == r) & scored], pred[(repos == r) & scored],
                                            average="macro")), 4) for r in sorted(set(repos))}
        result[kind] = {"mean": round(float(np.mean(list(per_repo.values()))), 4), "per_repo": per_repo}
    print(json.dumps({"args": vars(args), **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
