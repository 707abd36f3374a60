"""Choose the issuetype model's hyper-parameters by cross-validation on the NLBSE'24 *train* split only.

The protocol's score, per configuration: 5-fold stratified CV inside each repository (a model per
repository, trained on that repository's issues), macro F1 per repository, mean over repositories.
Prints one JSON line per configuration. The test split is never read here.

    WCML_EMBEDDING_CACHE=var/embeddings nice .venv/bin/python bench/predictor_search.py [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from services.predictor.datasets import read_labelled
from services.predictor.embedding import ensemble_pipeline, heavy_pipeline
from services.predictor.tasks import get_task
from services.predictor.tasks.base import text_pipeline

TRAIN = Path(__file__).resolve().parents[1].parent / "shared/datasets/nlbse24/issues_train.csv"

CONFIGS = {
    "light C=4": lambda: text_pipeline(4.0),
    "light C=16": lambda: text_pipeline(16.0),
    **{f"heavy C={c} w={w} tw={tw}": (lambda c=c, w=w, tw=tw: heavy_pipeline(c, w, tw))
       for c in (4.0, 16.0) for w in (1.0, 2.0) for tw in (0.0, 1.0)},
    **{f"heavy C=4 w={w}": (lambda w=w: heavy_pipeline(4.0, w)) for w in (0.5, 0.7)},
    **{f"vote ce={ce} tw={tw}": (lambda ce=ce, tw=tw: ensemble_pipeline(4.0, ce, (1.0, 1.0), tw))
       for ce in (1.0, 4.0, 16.0) for tw in (0.0, 1.0)},
    **{f"vote ce=4 tw=0 wt={wt}": (lambda wt=wt: ensemble_pipeline(4.0, 4.0, (1.0, wt)))
       for wt in (0.5, 2.0)},
}


def cv_score(make, texts, labels, repos, seed=0) -> dict:
    per_repo = {}
    for repo in sorted(set(repos)):
        mask = repos == repo
        x, y = texts[mask], labels[mask]
        pred = np.empty(len(y), dtype=object)
        for fit, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
            pred[test] = clone(make()).fit(list(x[fit]), y[fit]).predict(list(x[test]))
        per_repo[repo] = round(float(f1_score(y, pred, average="macro")), 4)
    return {"mean": round(float(np.mean(list(per_repo.values()))), 4), "per_repo": per_repo}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(TRAIN))
    parser.add_argument("--only", action="append", help="configuration names starting with this")
    args = parser.parse_args()
    if "test" in Path(args.data).name:
        sys.exit("refusing to choose hyper-parameters on a test split")
    task = get_task("issuetype")
    issues, labels = read_labelled(Path(args.data))
    texts = np.array([task.text(i) for i in issues], dtype=object)
    repos = np.array([i.repo for i in issues], dtype=object)
    labels = np.array(labels, dtype=object)
    for name, make in CONFIGS.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        start = time.perf_counter()
        result = cv_score(make, texts, labels, repos)
        print(json.dumps({"config": name, **result, "seconds": round(time.perf_counter() - start, 1)}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
