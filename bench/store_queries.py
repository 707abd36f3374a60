"""Query speed of the store with 1,000,000 predictions in PostgreSQL: issue lookup and filtered pages.

Loads a fresh database with COPY (the schema and indexes of the migrations, nothing added), then
times the same functions the API calls (services.api.queries, through SQLAlchemy and a pool)
over a few hundred random queries each. Prints JSON; the target is p99 < 50 ms.

    .venv/bin/python bench/store_queries.py [--rows 1000000] [--queries 300] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database, percentile, save  # noqa: E402
from services.api import queries  # noqa: E402
from services.api.filters import Filters  # noqa: E402
from shared.database import create_engine  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
REPOS = ["webcompat/web-bugs"] * 12 + ["webcompat/web-bugs-private"] * 3 + [
    f"org{i}/repo{i}" for i in range(40)]  # one big repository, a middle one, a long tail
LABELS = {"needsdiagnosis": ("needsdiagnosis", "invalid"), "issuetype": ("bug", "feature", "question")}
MODELS = {"needsdiagnosis": ("nd-2024.01", "nd-2024.09", "nd-2025.03"),
          "issuetype": ("it-2024.03", "it-2025.01")}
REPLAYS = [f"replay-{i}" for i in range(6)]
COLUMNS = ("delivery_id", "task", "model_version", "position", "event", "action", "repo", "number", "label",
           "confidence", "probabilities", "predicted_at", "stored_at", "replay_id", "blob_key")


def rows(count: int, seed: int = 1):
    """Events in log order; most score both tasks, a tenth of the rows come from replays."""
    rng = random.Random(seed)
    made, position = 0, 0
    issues: dict[str, int] = {}
    while made < count:
        position += 1
        repo = rng.choice(REPOS)
        if rng.random() < 0.7 or repo not in issues:  # a new issue, else another event on an old one
            number = issues[repo] = issues.get(repo, 0) + 1
        else:
            number = rng.randint(1, issues[repo])
        when = START + SPAN * (made / count)
        replay = rng.choice(REPLAYS) if rng.random() < 0.1 else None
        for task in ("needsdiagnosis", "issuetype") if rng.random() < 0.8 else ("needsdiagnosis",):
            versions = MODELS[task]  # models succeed each other over time; replays use the newest
            era = min(len(versions) - 1, made * len(versions) // count)
            model = versions[-1] if replay else versions[era]
            label = rng.choice(LABELS[task])
            confidence = round(rng.uniform(0.34, 1.0), 4)
            delivery = f"{'r' if replay else 'd'}-{position:08d}"
            yield (delivery, task, model, position, "issues", "opened", repo, number, label, confidence,
                   json.dumps({label: confidence}), when.isoformat(), when.isoformat(), replay or "\\N",
                   f"history/{task}/{repo}/{number}/{model}/{delivery}.json")
            made += 1
            if made == count:
                return


def load(url: str, count: int) -> float:
    engine = create_engine(url)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        batch = io.StringIO()
        for n, row in enumerate(rows(count), 1):
            batch.write("\t".join(str(v) for v in row) + "\n")
            if n % 100_000 == 0 or n == count:
                batch.seek(0)
                cursor.copy_expert(f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN", batch)
                batch = io.StringIO()
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE predictions")
    engine.dispose()
    return time.perf_counter() - started


def timed(function, n: int) -> dict:
    for _ in range(10):  # warm the pool and the cache as a running API would be
        function()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        function()
        samples.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(percentile(samples, 50), 2), "p99_ms": round(percentile(samples, 99), 2),
            "max_ms": round(max(samples), 2), "queries": n}


def measure(url: str, n: int, seed: int = 2) -> dict:
    engine = create_engine(url)
    rng = random.Random(seed)
    with engine.connect() as conn:
        issues = [tuple(r) for r in conn.exec_driver_sql(
            "SELECT repo, number FROM predictions TABLESAMPLE SYSTEM (1) LIMIT 5000")]

    def since() -> datetime:
        return START + SPAN * rng.random()

    def task_label() -> dict:
        task = rng.choice(list(LABELS))
        return {"task": task, "label": rng.choice(LABELS[task])}

    pages = {
        "task+label": lambda: task_label(),
        "repo": lambda: {"repo": rng.choice(REPOS)},
        "since": lambda: {"since": since().isoformat()},
        "task+label+repo+since": lambda: {**task_label(), "repo": rng.choice(REPOS),
                                          "since": since().isoformat()},
        "repo+min_confidence": lambda: {"repo": rng.choice(REPOS), "min_confidence": "0.9"},
        "model+replay": lambda: {"model": rng.choice(MODELS["needsdiagnosis"]),
                                 "replay": rng.choice(REPLAYS)},
        "live only": lambda: {"replay": "none"},
    }
    figures = {"issue lookup": timed(lambda: queries.latest_for_issue(engine, *rng.choice(issues)), n)}
    for name, make in pages.items():
        figures[f"page: {name}"] = timed(
            lambda make=make: queries.list_predictions(engine, Filters.parse(make()), limit=50), n)

    def second_page():
        filters = Filters.parse(task_label())
        first = queries.list_predictions(engine, filters, limit=50)
        return queries.list_predictions(engine, filters, first.next_cursor, 50)

    figures["two pages: task+label"] = timed(second_page, n)
    engine.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    args = parser.parse_args()
    url, drop = fresh_database()
    try:
        seconds = load(url, args.rows)
        figures = {"rows": args.rows, "load_seconds": round(seconds, 1),
                   "load_rows_per_second": round(args.rows / seconds), "latency": measure(url, args.queries)}
        worst = max(v["p99_ms"] for v in figures["latency"].values())
        figures["worst_p99_ms"] = worst
        figures["target_p99_ms"] = 50
        save("store_queries", figures)
        if args.keep:
            print(f"kept {url}", file=sys.stderr)
    finally:
        if not args.keep:
            drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
