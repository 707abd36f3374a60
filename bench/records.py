"""Records on the hot path, this code against another revision's: the message codec (a Prediction,
batches of 256 task messages and of 256 predictions, both ways), the store's row building (its value
checks and row of a decoded prediction), a stored row's JSON record and an event-log row's envelope.

The other revision's modules are read with ``git show`` and loaded beside this code's under their own
names, so both run in one process on the same data; each round times every case on both, alternating,
and the figures are each side's best and median over the rounds (the best is the steadier where other
work shares the machine). Prints JSON (microseconds per operation). Not a test: figures drift with the
machine's load.

    .venv/bin/python -m bench.records --against <revision> [--rounds 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
MODULES = {"messages": "shared/messages.py", "validation": "services/store/validation.py",
           "writer": "services/store/writer.py", "predictions": "shared/predictions.py",
           "event_log": "services/ingest/event_log.py"}
BATCH = 256


def load(revision: str | None) -> dict[str, ModuleType]:
    """The modules of ``revision`` (None: this code's, imported as usual). Another revision's import
    this code's modules for what they use but do not define (their message classes are their own)."""
    if revision is None:
        import services.ingest.event_log
        import services.store.validation
        import services.store.writer
        import shared.messages
        import shared.predictions
        return {"messages": shared.messages, "validation": services.store.validation,
                "writer": services.store.writer, "predictions": shared.predictions,
                "event_log": services.ingest.event_log}
    loaded = {}
    for name, path in MODULES.items():
        source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
        module_name = f"bench_records_{revision[:12]}_{name}"
        spec = importlib.util.spec_from_loader(module_name, loader=None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while the class is made
        exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own history
        loaded[name] = module
    return loaded


def cases(m: dict[str, ModuleType]) -> dict[str, tuple[callable, int]]:
    """Each case: a function to time and the operations one call does."""
    messages, validation, writer = m["messages"], m["validation"], m["writer"]
    prediction = messages.Prediction(
        task="needsdiagnosis", model_version="20261202T103834Z", delivery_id="0f3c9a7e-1b2d-4c5e-8f90",
        position=123456, repo="webcompat/web-bugs", number=98765, label="needsdiagnosis", confidence=0.8731,
        probabilities={"needsdiagnosis": 0.8731, "invalid": 0.1269}, event="issues", action="opened",
        predicted_at="2026-12-07T18:00:00.123456+00:00", replay_id="r-1", fills_live=True, source="live",
        probability=0.84, precision=0.91)
    issue = messages.IssueSnapshot(repo="webcompat/web-bugs", number=98765, url="https://github.com/x/y/issues/1",
                                   title="Site is broken in Firefox", body="Steps to reproduce " * 40,
                                   author="someone", labels=("browser-firefox", "engine-gecko"))
    tasks = [messages.TaskMessage(task="needsdiagnosis", delivery_id=f"d-{i}", position=i, event="issues",
                                  action="opened", issue=issue, replay_id="r-1") for i in range(BATCH)]
    predictions = [messages.replace(prediction, delivery_id=f"d-{i}", position=i) for i in range(BATCH)]
    one, task_batch = messages.encode(prediction), messages.encode_batch(tasks)
    prediction_batch = messages.encode_batch(predictions)
    decoded = [d.message for d in messages.decode_each(prediction_batch, messages.Prediction)]

    def build_rows():
        for p in decoded:
            writer._row(p, validation.check(p), "history/2026/12/07/x.jsonl")

    row = {**writer._row(prediction, validation.check(prediction), "history/2026/12/07/x.jsonl"),
           "id": 7, "predicted_at": datetime(2026, 12, 7, 18, tzinfo=UTC),
           "stored_at": datetime(2026, 12, 7, 18, 0, 1, tzinfo=UTC)}
    Row = namedtuple("Row", ["position", "delivery_id", "hook_id", "event", "action", "repo", "issue_number",
                             "sender", "received_at", "payload", "published_at", "source"])
    event_row = Row(42, "0f3c9a7e-1b2d", "123", "issues", "opened", "webcompat/web-bugs", 98765, "someone",
                    datetime(2026, 12, 7, 18, tzinfo=UTC), json.dumps({"action": "opened", "issue": {
                        "number": 98765, "title": "t", "body": "b" * 2000}}), None, "live")
    return {
        "encode a prediction": (lambda: messages.encode(prediction), 1),
        "decode a prediction": (lambda: messages.decode(one, messages.Prediction), 1),
        f"encode a batch of {BATCH} task messages": (lambda: messages.encode_batch(tasks), 1),
        f"decode a batch of {BATCH} task messages": (
            lambda: messages.decode_each(task_batch, messages.TaskMessage), 1),
        f"encode a batch of {BATCH} predictions": (lambda: messages.encode_batch(predictions), 1),
        f"decode a batch of {BATCH} predictions": (
            lambda: messages.decode_each(prediction_batch, messages.Prediction), 1),
        "store: check and build a prediction's row": (build_rows, BATCH),
        "a stored row's JSON record": (lambda: m["predictions"].record(row), 1),
        "an event-log row's envelope": (lambda: m["event_log"].envelope(event_row), 1),
    }


def per_operation(function, operations: int, budget: float = 0.05) -> float:
    """Microseconds of this process's CPU per operation: calls repeated for about ``budget`` CPU
    seconds (CPU time, not wall time: a moment another process had the core is not counted)."""
    calls, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < budget:
        function()
        calls += 1
    return elapsed / calls / operations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the revision to compare with, e.g. a commit")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    sides = {"before": cases(load(args.against)), "after": cases(load(None))}
    times: dict[str, dict[str, list[float]]] = {side: {name: [] for name in sides[side]} for side in sides}
    for _ in range(args.rounds):
        for name in sides["after"]:
            for side in ("before", "after"):  # alternating: a slower minute weighs on both
                function, operations = sides[side][name]
                times[side][name].append(per_operation(function, operations))
    report = {}
    for name in sides["after"]:
        best = {side: min(times[side][name]) for side in sides}
        median = {side: statistics.median(times[side][name]) for side in sides}
        report[name] = {"before": round(best["before"], 2), "after": round(best["after"], 2),
                        "after/before": round(best["after"] / best["before"], 3),
                        "median after/before": round(median["after"] / median["before"], 3)}
    print(json.dumps({"against": args.against, "rounds": args.rounds, "us_per_operation": report}, indent=2))


if __name__ == "__main__":
    main()
