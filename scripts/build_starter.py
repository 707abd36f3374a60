"""Build the packaged starter issuetype bundle: the light model's pooled fallback (the model every
repository that is not in its training data gets), trained on the NLBSE'24 train split.

    nice -n 19 .venv/bin/python scripts/build_starter.py [--data ../shared/datasets/nlbse24/issues_train.csv]

Writes ``services/predictor/training/starter/issuetype/<version>/`` (model + manifest); the data card
beside it (``DATA_CARD.md``) is written by hand from the figures ``wcml evaluate`` prints.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from services.predictor.kinds import make_fallback, make_pipeline
from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import list_versions, write_bundle
from services.predictor.tasks import get_task
from services.predictor.training.datasets import read_labelled
from services.predictor.training.training import fingerprint, train

ROOT = Path(__file__).resolve().parents[1]
STARTER = ROOT / "services/predictor/training/starter"
NLBSE_TRAIN = ROOT.parent / "shared/datasets/nlbse24/issues_train.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=NLBSE_TRAIN)
    args = parser.parse_args()
    task = get_task("issuetype")
    issues, labels = read_labelled(args.data)
    # a router with no per-repository model: every repository gets the pooled fallback
    model = RepoRouter(make_fallback(task, "light") or make_pipeline(task, "light"), min_examples=10**9)
    pipeline, metrics = train(task, issues, labels, kind="light", model=model)
    for old in list_versions(STARTER, task.name):
        shutil.rmtree(STARTER / task.name / old)
    path = write_bundle(STARTER, task, pipeline, data_size=len(issues), metrics=metrics,
                        data_fingerprint=fingerprint([task.text(i) for i in issues], labels),
                        data_source="NLBSE'24 issues_train.csv (github.com/nlbse2024/issue-report-"
                                    "classification@2927bc67)")
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"starter bundle -> {path} ({size / 1e6:.1f} MB); CV macro F1 {metrics['macro_f1']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
