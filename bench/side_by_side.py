"""Benchmark figures before and after a change, measured side by side in one run, the two versions
alternating: round 1 runs each benchmark before then after, round 2 after then before, and so on, so
a slow hour of the machine weighs on both alike.

    .venv/bin/python -m bench.side_by_side --before REF [--after REF | --after-tree .] [--rounds 3]
        [--only ingest latency replay predictor store_queries github_import] [--quick]

"before" is checked out into a temporary detached `git worktree` under var/side-by-side/ (removed at
the end, Ctrl-C included); "after" is a tree (default: this one) or, with --after, a second worktree.
Each version runs its own bench code and its own services: cwd and PYTHONPATH are its tree, the
interpreter is this one; the predictor benchmark gets each tree's own demo model (scripts/bench's).
Loads are scripts/bench's; --quick runs tiny ones, to check the mechanism.

Each run's bench/results/latest/<name>.json is kept in this tree, under
bench/results/side-by-side/<stamp>/<version>/<round>/ (with the run's log), and a tree's own
bench/results/ are put back as they were afterwards: side-by-side runs are not published figures.
summary.md and summary.json there (and the table printed): per headline figure (FIGURES), the
medians of both versions and the ratio after/before per round (min, median, max); "worse" when every
round's ratio (to 3 decimals) is on the wrong side of 1, "better" when every one is on the right side,
else "~". Prints figures; never passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/datasets/nlbse24/issues_test.csv"  # bench.predictor's default, for every tree
HIGHER, LOWER = "higher", "lower"
FIGURES = {  # benchmark: {path in its JSON: which way is better}; `*` is every key of a dict,
    # `runs[offered_per_s]` every item of the list `runs`, named by its offered_per_s
    "ingest": {"ingest.requests_per_s": HIGHER, "ratio_to_bare": HIGHER, "ingest.p99_ms": LOWER,
               "ingest_peak_rss_mib": LOWER},
    "latency": {"runs[offered_per_s].p50_ms": LOWER, "runs[offered_per_s].p99_ms": LOWER,
                "runs[offered_per_s].readable": HIGHER, "peak_rss_mib.*": LOWER},
    "replay": {"events_per_s": HIGHER, "ratio_to_raw_broker": HIGHER, "latest_documents_seconds": LOWER,
               "peak_rss_mib.*": LOWER, "cpu_seconds.*": LOWER},
    "predictor": {"single_issue_ms.p50": LOWER, "single_issue_ms.p99": LOWER,
                  "batch_issues_per_second.*": HIGHER, "through_broker.issues_per_second": HIGHER},
    "store_queries": {"load_rows_per_second": HIGHER, "latency.*.p99_ms": LOWER, "worst_p99_ms": LOWER},
    "github_import": {"import_events_per_s": HIGHER, "ratio_to_ceiling": HIGHER, "reimport_seconds": LOWER,
                      "requests": LOWER},
}
BENCHMARKS = list(FIGURES)
REPLAY_EVENTS = os.environ.get("WCML_BENCH_REPLAY_EVENTS", "100000")
LOADS = {  # benchmark: (scripts/bench's arguments, --quick's)
    "ingest": (["--seconds", "10"], ["--seconds", "2"]),
    "latency": (["--rates", "100", "500", "--seconds", "15"], ["--rates", "50", "--seconds", "3"]),
    "replay": (["--events", REPLAY_EVENTS], ["--events", "2000"]),
    "predictor": ([], ["--single", "50", "--fresh", "1", "--batch-issues", "512", "--broker-tasks", "2000"]),
    "store_queries": ([], ["--rows", "20000", "--queries", "30"]),
    "github_import": ([], ["--issues", "200"]),
}


def extract(benchmark: str, doc: dict) -> dict[str, tuple[float, str]]:
    """The headline figures of one result: {label: (value, better)}."""
    found = {}
    for path, better in FIGURES.get(benchmark, {}).items():
        for parts, value in _walk(doc, path.split(".")):
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[f"{benchmark} {'.'.join(parts)}"] = (float(value), better)
    return found


def _walk(node, path: list[str], at: tuple[str, ...] = ()):
    if not path:
        yield at, node
        return
    head, rest = path[0], path[1:]
    if not isinstance(node, dict):
        return
    if head == "*":
        children = list(node.items())
    elif head.endswith("]"):
        key, by = head[:-1].split("[")
        children = [(f"{key}[{item.get(by)}]", item)
                    for item in node.get(key) or [] if isinstance(item, dict)]
    else:
        children = [(head, node[head])] if head in node else []
    for name, child in children:
        yield from _walk(child, rest, (*at, str(name)))


def schedule(rounds: int, benchmarks: list[str]) -> list[tuple[int, str, str]]:
    """(round, benchmark, version) in run order: before first in even rounds, after first in odd ones."""
    return [(r, name, version) for r in range(rounds) for name in benchmarks
            for version in (("before", "after") if r % 2 == 0 else ("after", "before"))]


def summarize(before: list[dict], after: list[dict]) -> list[dict]:
    """One row per figure from per-round {label: (value, better)} of both versions (round i of one
    beside round i of the other)."""
    labels = dict.fromkeys(label for side in (before, after) for run in side for label in run)
    rows = []
    for label in labels:
        better = next(run[label][1] for side in (before, after) for run in side if label in run)
        ratios = [a[label][0] / b[label][0] for b, a in zip(before, after, strict=True)
                  if label in a and label in b and b[label][0]]
        shown = [round(r, 3) for r in ratios]  # judged as printed: 1.000 is no change
        good = [r > 1 if better == HIGHER else r < 1 for r in shown]
        bad = [r < 1 if better == HIGHER else r > 1 for r in shown]
        rows.append({
            "figure": label, "better": better,
            "before": _median([run[label][0] for run in before if label in run]),
            "after": _median([run[label][0] for run in after if label in run]),
            "ratio": [min(ratios), statistics.median(ratios), max(ratios)] if ratios else None,
            "rounds": len(ratios),
            "verdict": "better" if good and all(good) else "worse" if bad and all(bad) else "~",
        })
    return rows


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def table(rows: list[dict]) -> str:
    lines = ["| figure | better | before (median) | after (median) | after/before min / median / max | |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = " / ".join(f"{r:.3f}" for r in row["ratio"]) if row["ratio"] else "-"
        lines.append(f"| {row['figure']} | {row['better']} | {_fmt(row['before'])} | {_fmt(row['after'])} | "
                     f"{ratio} | {row['verdict']} |")
    return "\n".join(lines)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def worktree(ref: str):
    """A detached checkout of ``ref`` under var/side-by-side/, removed at the end."""
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    path = ROOT / "var" / "side-by-side" / f"{sha[:12]}-{os.getpid()}"
    git("worktree", "add", "--detach", str(path), sha)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))
        if not any(path.parent.iterdir()):
            path.parent.rmdir()


@contextmanager
def results_kept(tree: Path):
    """The tree, whose bench/results/ (all but side-by-side/) are put back as they were afterwards."""
    folder = tree / "bench" / "results"
    ours = lambda: [p for p in folder.rglob("*.json") if "side-by-side" not in p.relative_to(folder).parts]  # noqa: E731
    saved = {p: p.read_bytes() for p in ours()}
    try:
        yield tree
    finally:
        for path in set(ours()) - set(saved):
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        for path, data in saved.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@contextmanager
def venv_linked(tree: Path):
    """Where the tree has no .venv (a worktree), this interpreter's as <tree>/.venv while it runs:
    benchmarks start tools by that path (bench.ingest's .venv/bin/gunicorn)."""
    link = tree / ".venv"
    made = not link.exists() and sys.prefix != sys.base_prefix
    if made:
        link.symlink_to(sys.prefix)
    try:
        yield
    finally:
        if made:
            link.unlink()


def model_of(tree: Path) -> Path:
    """The tree's newest bench model (var/bench-models/issuetype/<version>), made as scripts/bench does."""
    models = tree / "var" / "bench-models"
    found = lambda: sorted(p for p in (models / "issuetype").glob("*") if p.is_dir())  # noqa: E731
    if not found():
        subprocess.run([sys.executable, "-m", "services.cli", "models", "demo", "--task", "issuetype"],
                       cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), "WCML_MODELS_DIR": str(models)},
                       check=True, stdout=subprocess.DEVNULL)
    return found()[-1]


def run(tree: Path, name: str, args: list[str], keep: Path) -> dict | None:
    """Run one benchmark in ``tree``; its latest/<name>.json, copied to ``keep``, or None if it failed."""
    latest = tree / "bench" / "results" / "latest" / f"{name}.json"
    latest.unlink(missing_ok=True)
    keep.mkdir(parents=True, exist_ok=True)
    if name == "predictor":  # it prints its JSON; scripts/bench writes it to latest/
        args = [*args, "--model", str(model_of(tree)), "--data", str(DATA)]
    log = keep / f"{name}.log"
    with log.open("w") as err, (latest.open("w") if name == "predictor" else err) as out:
        proc = subprocess.Popen([sys.executable, "-m", f"bench.{name}", *args], cwd=tree, stdout=out,
                                stderr=err, env={**os.environ, "PYTHONPATH": str(tree)})
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # the benchmark got it too: let it stop its services
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.terminate()
            raise
    try:
        doc = json.loads(latest.read_text()) if code == 0 else None
    except (OSError, ValueError):
        doc = None
    if doc is None:
        print(f"  failed (exit {code}); the log: {log}\n" + "".join(log.read_text().splitlines(True)[-5:]))
        return None
    shutil.copy(latest, keep / f"{name}.json")
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git ref of the version before")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--after", help="git ref of the version after (default: --after-tree)")
    group.add_argument("--after-tree", default=".", help="the version after, as this tree is (default: .)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    parser.add_argument("--quick", action="store_true", help="tiny loads, to check the mechanism")
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / "side-by-side" / stamp
    benchmarks = [name for name in BENCHMARKS if name in args.only]
    figures = {"before": [{} for _ in range(args.rounds)], "after": [{} for _ in range(args.rounds)]}
    try:
        with ExitStack() as stack:
            trees = {"before": stack.enter_context(worktree(args.before))}
            after = worktree(args.after) if args.after else results_kept(Path(args.after_tree).resolve())
            trees["after"] = stack.enter_context(after)
            for tree in trees.values():
                stack.enter_context(venv_linked(tree))
            versions = {v: git("describe", "--always", "--dirty", cwd=t) for v, t in trees.items()}
            print("; ".join(f"{v} {versions[v]} ({t})" for v, t in trees.items()))
            for r, name, version in schedule(args.rounds, benchmarks):
                started = time.monotonic()
                print(f"round {r + 1}/{args.rounds}: {name} {version}", flush=True)
                doc = run(trees[version], name, LOADS[name][args.quick], out / version / str(r + 1))
                figures[version][r].update(extract(name, doc or {}))
                print(f"  {time.monotonic() - started:.0f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted; worktree removed, results put back", file=sys.stderr)
        return 130
    rows = summarize(figures["before"], figures["after"])
    text = (f"Before {versions['before']}, after {versions['after']}; {args.rounds} round(s), alternating; "
            f"{'quick' if args.quick else 'scripts/bench'} loads.\n\n{table(rows)}\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    summary = {"versions": versions, "rounds": args.rounds, "quick": args.quick, "benchmarks": benchmarks,
               "rows": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\n{text}\n{out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
