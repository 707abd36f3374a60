"""Choose the issuetype model's hyper-parameters by cross-validation on the NLBSE'24 *train* split only.

The protocol's score, per configuration: 5-fold CV stratified by (repository, label), a model per
repository (``RepoRouter``: its own issues, plus the other repositories' at ``others_weight`` each),
macro F1 per repository, mean over repositories; the same folds as ``wcml train``. Prints one JSON
line per configuration. The test split is never read here.

    WCML_EMBEDDING_CACHE=var/embeddings nice .venv/bin/python bench/predictor_search.py [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from services.predictor.embedding import ensemble_pipeline, heavy_pipeline
from services.predictor.routing import RepoRouter
from services.predictor.tasks import get_task
from services.predictor.tasks.base import text_pipeline
from services.predictor.training.datasets import read_labelled

TRAIN = Path(__file__).resolve().parents[1].parent / "shared/datasets/nlbse24/issues_train.csv"

# name -> (a fresh pipeline, others_weight)
CONFIGS = {
    **{f"light C={c} title={t} others={a}": (lambda c=c, t=t: text_pipeline(c, title=t), a)
       for c in (4.0, 16.0) for t in (False, True) for a in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)},
    **{f"heavy C={c} w={w} tw={tw}": (lambda c=c, w=w, tw=tw: heavy_pipeline(c, w, tw, title=False), 0.0)
       for c in (4.0, 16.0) for w in (1.0, 2.0) for tw in (0.0, 1.0)},
    **{f"heavy C=4 w={w}": (lambda w=w: heavy_pipeline(4.0, w, title=False), 0.0) for w in (0.5, 0.7)},
    **{f"heavy C=4 w=0.7 title={t} tw={tw} others={a}": (
        lambda t=t, tw=tw: heavy_pipeline(4.0, 0.7, tw, title=t), a)
       for t in (False, True) for tw in (0.0, 0.5) for a in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)},
    **{f"vote ce={ce} tw={tw}": (lambda ce=ce, tw=tw: ensemble_pipeline(4.0, ce, (1.0, 1.0), tw), 0.0)
       for ce in (1.0, 4.0, 16.0) for tw in (0.0, 1.0)},
    **{f"vote ce=4 tw=0 wt={wt}": (lambda wt=wt: ensemble_pipeline(4.0, 4.0, (1.0, wt)), 0.0)
       for wt in (0.5, 2.0)},
}


def cv_score(make, others_weight, texts, labels, repos, seed=0) -> dict:
    inputs = list(zip(repos, texts, strict=True))
    strata = [f"{r}\n{label}" for r, label in zip(repos, labels, strict=True)]
    pred = np.empty(len(labels), dtype=object)
    for fit, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(inputs, strata):
        router = RepoRouter(make(), others_weight=others_weight).fit([inputs[i] for i in fit], labels[fit])
        pred[test] = router.predict([inputs[i] for i in test])
    per_repo = {repo: round(float(f1_score(labels[repos == repo], pred[repos == repo], average="macro")), 4)
                for repo in sorted(set(repos))}
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
    for name, (make, others_weight) in CONFIGS.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        start = time.perf_counter()
        result = cv_score(make, others_weight, texts, labels, repos)
        print(json.dumps({"config": name, **result, "seconds": round(time.perf_counter() - start, 1)}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
