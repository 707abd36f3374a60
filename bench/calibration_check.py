"""Does the precision a bundle promises hold on a repository it was never trained on? On the NLBSE'24
*train* split only (the test split is never read here).

For each of the five repositories: a bundle is trained as the starter is (the light kind pooled, no
per-repository model: every repository gets the fallback) on the other four repositories' issues with
``train``, which measures its ``unseen`` calibration by leave-one-repository-out among those four; it
is written and loaded as a bundle, then scores the fifth repository's issues. Over the five held-out
repositories together, per ``min_precision`` level: how many predictions promise at least that (what
an actions rule with that level acts on) and the precision observed among them. Prints JSON.

    nice -n 19 .venv/bin/python -m bench.calibration_check [--kind light] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from services.predictor.kinds import make_pipeline
from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import load_bundle, write_bundle
from services.predictor.tasks import get_task
from services.predictor.training.datasets import read_labelled
from services.predictor.training.scoring import promises_kept
from services.predictor.training.training import train

TRAIN = Path(__file__).resolve().parents[1].parent / "shared/datasets/nlbse24/issues_train.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="light")
    parser.add_argument("--data", type=Path, default=TRAIN)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    task = get_task("issuetype")
    issues, labels = read_labelled(args.data)
    y = np.asarray(labels, dtype=object)
    repos = np.array([i.repo for i in issues], dtype=object)
    scored, truth, started = [], [], time.monotonic()
    for repo in sorted(set(repos)):
        rest = np.flatnonzero(repos != repo)
        model = RepoRouter(make_pipeline(task, args.kind), min_examples=10**9)
        fitted, metrics = train(task, [issues[i] for i in rest], list(y[rest]), kind=args.kind, model=model)
        with tempfile.TemporaryDirectory() as models:
            write_bundle(Path(models), task, fitted, data_fingerprint="-", data_size=len(rest),
                         metrics=metrics, version="v1")
            held = np.flatnonzero(repos == repo)
            scored += load_bundle(Path(models), task.name, "v1").predict([issues[i] for i in held])
            truth += list(y[held])
        print(f"{repo}: done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    rows = promises_kept(truth, scored)  # as ``wcml evaluate`` reports it, over the five together
    report = {"kind": args.kind, "data": str(args.data), "issues": len(scored),
              "seconds": round(time.monotonic() - started), "rows": rows}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
