"""The embedded mode loses nothing on any stop: `wcml run` under webhooks from 16 clients, killed with
SIGKILL at three random moments and stopped with SIGTERM once, restarted each time with no command
from the user. Counted as the distributed fault tests are: attempted / accepted / lost / duplicated.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from services.samples import issue_payload, signed_request
from tests.harness import free_port
from tests.processes import wait_http
from tests.waiting import eventually

pytestmark = pytest.mark.e2e
CLIENTS = 16
TASKS = ("issuetype", "needsdiagnosis")
RESULTS = Path(__file__).parent.parent / "output" / "faults"


class Instance:
    """`wcml run` in one folder, started and stopped as a user (or the machine) would."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.bind = f"127.0.0.1:{free_port()}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.bind}/webhooks/github"

    def start(self) -> None:
        self.starts += 1
        log = (self.folder / f"run-{self.starts}.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", self.bind],
                                        cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"http://{self.bind}/healthz", timeout=120)

    def stop(self, signum: int) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(60)
        return code, time.monotonic() - started

    def secret(self) -> str:
        return (self.folder / "var/webhook_secret").read_text().strip()

    def stored(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.folder / "var/wcml.db", timeout=30) as db:
            return db.execute("SELECT delivery_id, task FROM predictions").fetchall()


class Clients:
    """16 senders sharing a list of deliveries; each is posted once (a delivery that got no answer
    is not accepted: GitHub keeps it for a manual redelivery)."""

    def __init__(self, url: str, secret: str, deliveries: list[tuple[str, int]]):
        self.url, self.secret = url, secret
        self.todo: queue.Queue = queue.Queue()
        for item in deliveries:
            self.todo.put(item)
        self.attempted, self.sent, self.accepted = 0, set(), set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(CLIENTS)]

    def _send(self) -> None:
        while True:
            try:
                delivery, number = self.todo.get_nowait()
            except queue.Empty:
                return
            request = signed_request(self.url, self.secret, "issues", issue_payload(number=number),
                                     delivery_id=delivery)
            with self.lock:
                self.attempted += 1
                self.sent.add(delivery)
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    if answer.status in (200, 202):
                        with self.lock:
                            self.accepted.add(delivery)
            except (urllib.error.URLError, OSError):
                pass

    def start(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join(120)


def report(name: str, sent: set[str], accepted: set[str], stored: list[tuple[str, str]], extra: dict) -> dict:
    """A delivery sent but never answered (the process died first) may have been committed: GitHub
    would show it failed, and its redelivery would be answered "duplicate". Its predictions are
    counted apart; anything stored for a delivery never sent is unexpected."""
    seen: dict[tuple[str, str], int] = {}
    for key in stored:
        seen[key] = seen.get(key, 0) + 1
    expected = {(d, t) for d in accepted for t in TASKS}
    unanswered = {(d, t) for d in sent - accepted for t in TASKS}
    result = {"fault": name, "attempted": len(sent), "accepted": len(accepted),
              "expected_predictions": len(expected), "stored_predictions": len(stored),
              "lost": len(expected - set(seen)), "duplicated": sum(n - 1 for n in seen.values() if n > 1),
              "unexpected": len(set(seen) - expected - unanswered),
              "stored_for_unanswered_deliveries": len(set(seen) & unanswered), **extra}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"fault {name}: {json.dumps(result)}")
    return result


def run_until_stopped(instance: Instance, deliveries: list[tuple[str, int]], signum: int, rng: random.Random
                      ) -> tuple[Clients, int, float]:
    """Send ``deliveries`` from 16 clients; stop the instance with ``signum`` once a random share of them
    is accepted."""
    clients = Clients(instance.url, instance.secret(), deliveries).start()
    kill_at = rng.randint(len(deliveries) // 4, len(deliveries) * 9 // 10)
    eventually(lambda: len(clients.accepted) >= kill_at, timeout=120, interval=0.01,
               message=f"{kill_at} accepted webhooks before stopping")
    code, took = instance.stop(signum)
    clients.join()
    return clients, code, took


def settle(instance: Instance, accepted: set[str]) -> list[tuple[str, str]]:
    """After a restart: until every accepted webhook has both predictions (or the time is up; the
    report then says what is missing)."""
    try:
        eventually(lambda: {d for d, _ in instance.stored()} >= accepted
                   and len(instance.stored()) >= len(accepted) * len(TASKS), timeout=180, interval=0.5,
                   message="every accepted webhook's predictions after the restart")
    except AssertionError:
        pass
    return instance.stored()


def test_sigkill_at_three_moments_and_sigterm_lose_nothing(tmp_path):
    rng = random.Random(os.environ.get("WCML_TEST_SEED", "embedded-faults"))
    instance = Instance(tmp_path)
    instance.start()
    sent, accepted, stops = set(), set(), []
    rounds = [(signal.SIGKILL, 700), (signal.SIGKILL, 650), (signal.SIGKILL, 650), (signal.SIGTERM, 600)]
    first = 1
    for signum, count in rounds:
        deliveries = [(f"e-{n}", n) for n in range(first, first + count)]
        first += count
        clients, code, took = run_until_stopped(instance, deliveries, signum, rng)
        sent |= clients.sent
        accepted |= clients.accepted
        stops.append({"signal": signal.Signals(signum).name, "accepted_before": len(accepted),
                      "exit_code": code, "seconds_to_exit": round(took, 2)})
        instance.start()  # no command from the user: the instance catches up by itself
    stored = settle(instance, accepted)
    wanted_documents = {(task, int(d.split("-")[1])) for d in accepted for task in TASKS}

    def missing_documents() -> set:
        return {(task, n) for task, n in wanted_documents
                if not (tmp_path / f"var/blobs/{task}/webcompat/web-bugs/{n}.json").exists()}

    try:  # the row commits first, then its documents are written
        eventually(lambda: not missing_documents(), timeout=60, message="every latest document")
    except AssertionError:
        pass
    result = report("embedded-kill-and-term", sent, accepted, stored,
                    {"stops": stops, "latest_documents_missing": len(missing_documents())})
    instance.stop(signal.SIGTERM)

    sigterm = stops[-1]
    assert sigterm["exit_code"] == 0 and sigterm["seconds_to_exit"] <= 30, sigterm
    assert all(s["exit_code"] == -signal.SIGKILL for s in stops[:3]), stops
    assert result["accepted"] >= 500, result  # the stops came under load, not before it
    assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0), result
    assert result["latest_documents_missing"] == 0, result
