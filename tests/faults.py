"""Fault-test harness: the whole distributed pipeline as processes, a steady webhook load, and a
Jepsen-style count of what was accepted against what was stored (lost / duplicated / unexpected).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from services.samples import issue_payload, signed_request
from tests.harness import free_port
from tests.processes import Pipeline, ServiceProcess, wait_http
from tests.waiting import DEAD_LETTERS, settled

SECRET = "fault-secret"
TASKS = ("issuetype", "needsdiagnosis")
RESULTS = Path(__file__).parent / "output" / "faults"


@dataclass
class Load:
    """Posts issues.opened webhooks at ``rate``/s; like an operator redelivering from GitHub's
    delivery log, a delivery that got no 2xx is sent again (same delivery id) until it does."""

    url: str
    rate: float
    prefix: str
    attempted: int = 0
    accepted: set[str] = field(default_factory=set)
    refusals: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def _send(self, i: int) -> None:
        delivery = f"{self.prefix}-{i}"
        payload = issue_payload(number=i + 1, title=f"site{i % 13}.example - issue {i}")
        for attempt in range(200):
            try:
                request = signed_request(self.url, SECRET, "issues", payload, delivery_id=delivery)
                with urllib.request.urlopen(request, timeout=10) as response:
                    if response.status in (200, 202):
                        self.accepted.add(delivery)
                        return
            except urllib.error.HTTPError as exc:
                self.refusals[exc.code] = self.refusals.get(exc.code, 0) + 1
            except OSError:
                self.refusals[0] = self.refusals.get(0, 0) + 1
            time.sleep(min(0.1 * (attempt + 1), 1.0))  # the sender's backoff between redeliveries

    def run(self, count: int) -> threading.Thread:
        def loop():
            start = time.monotonic()
            senders = []
            for i in range(count):
                if self.stop.is_set():
                    break
                time.sleep(max(0.0, start + i / self.rate - time.monotonic()))  # the offered rate
                sender = threading.Thread(target=self._send, args=(i,), daemon=True)
                sender.start()
                senders.append(sender)
                self.attempted += 1
            for sender in senders:
                sender.join(120)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


class FaultPipeline(Pipeline):
    def __init__(self, env: dict[str, str], log_dir: Path, pg_url: str, rabbit_node: str | None = None):
        super().__init__({**env, "WCML_WEBHOOK_SECRETS": SECRET}, log_dir)
        self.engine = sa.create_engine(pg_url, pool_pre_ping=True)
        self.ingest_url = f"http://127.0.0.1:{free_port()}"
        self.rabbit_node = rabbit_node  # a node of a test cluster, for rabbitmqctl -n (else the local one)
        self.relays_started = 0

    def start_all(self, relays: int = 0) -> None:
        """``relays``: ingest with ``--no-relay`` and that many ``wcml relay`` processes of their own
        (``start_relay``); 0: ingest's relay beside it."""
        trained = self.run("models", "demo")
        assert trained.returncode == 0, trained.stderr
        self.start("ingest", "ingest", "--bind", self.ingest_url[7:], "--workers", "2",
                   *(["--no-relay"] if relays else []))
        for _ in range(relays):
            self.start_relay()
        self.start("dispatcher", "dispatcher")
        for task in TASKS:
            self.start_predictor(task)
        self.start("store", "store")
        wait_http(self.ingest_url + "/healthz")

    def start_relay(self) -> ServiceProcess:
        """``wcml relay`` as ``relay-<n>``, the name its PostgreSQL sessions carry (application_name)."""
        self.relays_started += 1
        name = f"relay-{self.relays_started}"
        return self.start(name, "relay", env={"PGAPPNAME": name})

    def start_predictor(self, task: str):
        return self.start(f"predictor-{task}", "predictor", "--task", task, "--batch", "32")

    def load(self, rate: float, prefix: str) -> Load:
        return Load(self.ingest_url + "/webhooks/github", rate, prefix)

    def predictions(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT delivery_id, task, model_version FROM predictions"))]

    def wait_for(self, expected_rows: int, timeout: float = 120, ignore: tuple[str, ...] = ()) -> None:
        """Until the pipeline has settled: every logged event published, every queue (but the dead
        letters and ``ignore``, a test's own queues) without ready or unacknowledged messages. Nothing
        can land after that, a late duplicate included, so the count that follows is final; ``check``
        says what was lost."""
        settled(self.env["WCML_BROKER_URL"], self.engine, timeout=timeout, node=self.rabbit_node,
                ignore=(DEAD_LETTERS, *ignore),
                message=lambda: f"the pipeline to settle ({expected_rows} predictions expected, "
                                f"{self._stored()} stored)")

    def _stored(self) -> str:
        try:
            return str(len(self.predictions()))
        except sa.exc.OperationalError:
            return "unknown"

    def close(self) -> dict[str, int]:
        codes = self.stop_all()
        self.engine.dispose()
        return codes


def check(name: str, load: Load, rows: list[tuple[str, str, str]], extra: dict | None = None) -> dict:
    """Counts as Jepsen's queue checker reports them; written to tests/output/faults/<name>.json."""
    expected = {(d, t) for d in load.accepted for t in TASKS}
    seen: dict[tuple[str, str], int] = {}
    for delivery, task, _model in rows:
        seen[(delivery, task)] = seen.get((delivery, task), 0) + 1
    report = {
        "fault": name,
        "attempted": load.attempted,
        "accepted": len(load.accepted),
        "expected_predictions": len(expected),
        "stored_predictions": len(rows),
        "lost": len(expected - set(seen)),
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
        "unexpected": len(set(seen) - expected),
        "refusals_before_success": {str(k): v for k, v in sorted(load.refusals.items())},
        **(extra or {}),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"fault {name}: {json.dumps(report)}")
    return report
