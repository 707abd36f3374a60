"""End-to-end latency: webhook POST to both predictions readable from the query API, p50/p95/p99,
at steady offered loads (open loop), in the distributed mode on real RabbitMQ and PostgreSQL.

    .venv/bin/python -m bench.latency [--rates 100 500] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench.common import percentile, save
from bench.pipeline import API_KEY, SECRET, TASKS, BenchPipeline
from services.samples import issue_payload, signed_request
from tests.waiting import eventually


class Watcher:
    """Follows the API's feed of predictions; notes when each delivery has all its tasks readable."""

    PAGE = 100

    def __init__(self, api_url: str):
        self.api_url = api_url
        self.seen: dict[str, set[str]] = {}
        self.readable_at: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _get(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.api_url}/api/v1/predictions?{query}", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def _poll(self) -> None:
        """``?after=`` the last id read, oldest first: the store makes ids visible in the order it gives
        them, so each row is read once, when it becomes readable, and none is passed."""
        last = 0
        while not self.stop.is_set():
            items = self._get(f"after={last}&limit={self.PAGE}")["items"]
            now = time.monotonic()
            for item in items:
                last = max(last, item["id"])
                tasks = self.seen.setdefault(item["delivery_id"], set())
                tasks.add(item["task"])
                if len(tasks) == len(TASKS):
                    self.readable_at.setdefault(item["delivery_id"], now)
            if len(items) < self.PAGE:
                time.sleep(0.005)  # the watcher's polling period (part of the measurement), not a wait


def offered_load(
    pipeline: BenchPipeline, rate: int, seconds: int, prefix: str = "", wait: float = 30
) -> dict:
    watcher = Watcher(pipeline.api_url)
    sent: dict[str, float] = {}
    statuses: list[int] = []
    prefix = prefix or f"lat{rate}"

    def post(i: int) -> None:
        delivery = f"{prefix}-{i}"
        request = signed_request(
            pipeline.ingest_url + "/webhooks/github",
            SECRET,
            "issues",
            issue_payload(number=i + 1, title=f"site{i % 31}.example - layout broken"),
            delivery_id=delivery,
        )
        sent[delivery] = time.monotonic()
        with urllib.request.urlopen(request, timeout=10) as response:
            statuses.append(response.status)

    start = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        for i in range(rate * seconds):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))  # the offered rate
            pool.submit(post, i)
    try:
        # Only this run's deliveries: the first polls also find the previous run's newest rows.
        eventually(lambda: len(sent.keys() & watcher.readable_at.keys()) >= len(sent), timeout=wait,
                   message="every delivery readable")
    except AssertionError:
        pass  # measured as it is: "readable" below counts what made it in time
    watcher.stop.set()
    latencies = [(watcher.readable_at[d] - t) * 1000 for d, t in sent.items() if d in watcher.readable_at]
    return {
        "offered_per_s": rate,
        "seconds": seconds,
        "sent": len(sent),
        "accepted": statuses.count(202),
        "readable": len(latencies),  # of those sent: a row committed after 100 newer ones is never seen
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
    }


STAGES = """
SELECT e.delivery_id,
       extract(epoch FROM e.published_at - e.received_at) AS relayed,
       extract(epoch FROM max(p.predicted_at) - e.published_at) AS predicted,
       extract(epoch FROM max(p.stored_at) - max(p.predicted_at)) AS stored,
       extract(epoch FROM max(p.stored_at) - e.received_at) AS in_the_database
FROM event_log e JOIN predictions p ON p.delivery_id = e.delivery_id
WHERE e.delivery_id LIKE :prefix
GROUP BY e.delivery_id, e.received_at, e.published_at
HAVING count(*) = :tasks
"""


def stages(db_url: str, prefix: str) -> dict:
    """Where a run's time went, from the rows' own timestamps (one clock): committed -> published by
    the relay -> both predictions made -> both stored, and committed -> stored, p50/p99 in ms. What the
    API figure adds beyond the last is the query API and the watcher's polling."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(sa.text(STAGES), {"prefix": f"{prefix}-%", "tasks": len(TASKS)}))
    finally:
        engine.dispose()
    out = {}
    for stage in ("relayed", "predicted", "stored", "in_the_database"):
        values = [float(getattr(r, stage)) * 1000 for r in rows]
        if values:
            out[stage] = {f"p{q}_ms": round(percentile(values, q), 1) for q in (50, 99)}
    return out


def warm_up(pipeline: BenchPipeline) -> None:
    """Until every consumer answers: one prediction per task for a warm-up delivery."""
    run = offered_load(pipeline, rate=5, seconds=1, prefix="warmup", wait=120)
    if run["readable"] < run["sent"]:
        raise RuntimeError(f"pipeline not ready: {run}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    pipeline = BenchPipeline()
    try:
        warm_up(pipeline)
        runs = [offered_load(pipeline, rate, args.seconds) for rate in args.rates]
        for run in runs:
            run["stages"] = stages(pipeline.db_url, f"lat{run['offered_per_s']}")
        memory = pipeline.memory()
    finally:
        pipeline.close()
    save(
        "latency",
        {
            "setup": "ingest (2 workers) + relay, dispatcher, 2 predictors, store, api (2 workers) as "
            "processes; RabbitMQ + PostgreSQL local; blobs on local disk; the API polled every "
            "~5 ms, newest first, 20 rows a page (100 every 0.25 s), paging back to the last row seen",
            "runs": runs,
            "peak_rss_mib": memory,
        },
    )


if __name__ == "__main__":
    main()
