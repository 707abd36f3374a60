"""Does the precision a bundle promises hold on a repository it was never trained on? On the NLBSE'24
*train* split only (the test split is never read here).

For each of the five repositories: a bundle is trained as the starter is (the light kind pooled, no
per-repository model: every repository gets the fallback) on the other four repositories' issues with
``train``, which measures its ``unseen`` calibration by leave-one-repository-out among those four; it
is written and loaded as a bundle, then scores the fifth repository's issues. Per threshold of
calibrated probability, over the five held-out repositories together: how many issues, the precision
the predictions promised (their mean) and the precision observed. Prints JSON.

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

from services.predictor.calibration import STEPS
from services.predictor.kinds import make_pipeline
from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import load_bundle, write_bundle
from services.predictor.tasks import get_task
from services.predictor.training.datasets import read_labelled
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
    rows = []
    for t in STEPS:
        kept = [(s, label) for s, label in zip(scored, truth, strict=True) if s.probability >= t]
        promised = [s.precision for s, _ in kept if s.precision is not None]
        acting = [(s, label) for s, label in kept if s.precision is not None and s.precision >= 0.9]
        rows.append({"threshold": t, "classified": len(kept),
                     "observed": round(float(np.mean([s.label == label for s, label in kept])), 4)
                     if kept else None,
                     "promised": round(float(np.mean(promised)), 4) if promised else None,
                     "promised_at_least_0.9": len(acting),
                     "observed_where_promised_0.9": round(float(np.mean([s.label == label
                                                                         for s, label in acting])), 4)
                     if acting else None})
    report = {"kind": args.kind, "data": str(args.data), "issues": len(scored),
              "seconds": round(time.monotonic() - started), "rows": rows}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
