"""Choose the model for repositories a bundle has never seen, by leave-one-repository-out on the NLBSE'24
*train* split only (the test split is never read here).

A ``RepoRouter`` answers an unseen repository with its pooled fallback, so each candidate here is a
pooled model: trained on four repositories' train issues, scored (macro F1) on the fifth's. The
per-repository sub-models, and so the NLBSE'24 protocol's figure, do not depend on the fallback.
Prints one JSON line per configuration.

    WCML_EMBEDDING_CACHE=/work/.cache-embeddings nice -n 19 .venv/bin/python -m bench.loro_search [--only A,B]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import FeatureUnion, Pipeline

from services.predictor.embedding import SentenceEmbedding, heavy_pipeline
from services.predictor.tasks import get_task
from services.predictor.tasks.base import text_pipeline
from services.predictor.tasks.markers import Markers
from services.predictor.training.datasets import read_labelled
from services.predictor.training.loro import BASELINE, baseline_model, leave_one_repo_out

TRAIN = Path(__file__).resolve().parents[1].parent / "shared/datasets/nlbse24/issues_train.csv"


def with_markers(pipeline: Pipeline, weight: float) -> Pipeline:
    features = pipeline.named_steps["features"]
    features.transformer_list.append(("markers", Markers(weight)))
    return pipeline


def embedding_only(c: float = 4.0) -> Pipeline:
    return Pipeline([("features", FeatureUnion([("embedding", SentenceEmbedding())])),
                     ("classifier", LogisticRegression(C=c, class_weight="balanced", max_iter=2000))])


CONFIGS = {
    BASELINE: baseline_model,
    "light": text_pipeline,
    **{f"light C={c}": (lambda c=c: text_pipeline(c)) for c in (0.5, 1.0, 16.0)},
    **{f"light markers={w}": (lambda w=w: with_markers(text_pipeline(), w)) for w in (0.5, 1.0, 2.0)},
    "heavy": heavy_pipeline,
    **{f"heavy w={w}": (lambda w=w: heavy_pipeline(weight=w)) for w in (1.0, 1.5, 2.0)},
    **{f"heavy C={c}": (lambda c=c: heavy_pipeline(c=c)) for c in (1.0, 16.0)},
    **{f"heavy markers={w}": (lambda w=w: with_markers(heavy_pipeline(), w)) for w in (0.5, 1.0, 2.0)},
    **{f"heavy w=1.5 markers={w}": (lambda w=w: with_markers(heavy_pipeline(weight=1.5), w)) for w in (1.0,)},
    **{f"embedding only C={c}": (lambda c=c: embedding_only(c)) for c in (1.0, 4.0)},
    **{f"heavy w={w}": (lambda w=w: heavy_pipeline(weight=w)) for w in (0.3, 0.5)},
    "heavy title embedding 0.5": lambda: heavy_pipeline(title_weight=0.5),
    "light without chars": lambda: without(text_pipeline(), "chars"),
    "heavy without chars": lambda: without(heavy_pipeline(), "chars"),
    "light without title": lambda: text_pipeline(title=False),
}


def without(pipeline: Pipeline, part: str) -> Pipeline:
    """``pipeline`` without one of its text feature parts (heavy: inside its TF-IDF union)."""
    features = pipeline.named_steps["features"]
    inner = dict(features.transformer_list).get("tfidf", features)
    inner.transformer_list = [(n, t) for n, t in inner.transformer_list if n != part]
    return pipeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated configuration names")
    parser.add_argument("--data", type=Path, default=TRAIN)
    parser.add_argument("--external", type=Path, help="instead: fit on all of --data, score on this "
                        "data set of other repositories (macro F1 over all its issues)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(CONFIGS)
    task = get_task("issuetype")
    issues, labels = read_labelled(args.data)
    if args.external:
        outside, truth = read_labelled(args.external)
        for name in names:
            model = CONFIGS[name]().fit([task.text(i) for i in issues], labels)
            predicted = model.predict([task.text(i) for i in outside])
            print(json.dumps({"config": name, "external": str(args.external), "n": len(outside),
                              "macro_f1": round(float(f1_score(truth, predicted, labels=list(task.labels),
                                                               average="macro", zero_division=0)), 4)}))
        return 0
    for name in names:
        started = time.monotonic()
        report = leave_one_repo_out(task, issues, labels, {name: CONFIGS[name]})
        print(json.dumps({"config": name, "mean": report["mean_macro_f1"][name],
                          "per_repo": {r: row[name] for r, row in report["repos"].items()},
                          "precision_share": {row["threshold"]: (row["precision"], row["share"])
                                              for row in report["thresholds"].get(name, [])},
                          "seconds": round(time.monotonic() - started)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
