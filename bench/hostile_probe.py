"""The bad-input probe: valid webhooks beside hostile ones, concurrently, against ``wcml run``.

8 clients send 300 valid signed ``issues.opened`` while 4 others send 12 hostile kinds three times
each (144). Prints how many of the 600 predictions the valid ones should have are stored, and when
the last arrived after the first request; what ingest answered the hostile ones; and the dead
letters with their reasons. Then the instance is stopped, started again, and counted once more.

    .venv/bin/python -m bench.hostile_probe [--wait 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import free_port, save, wait_http
from services.samples import issue_payload
from tests.hostile import REPO, TASKS, Sent, post

VALID, VALID_CLIENTS, HOSTILE_CLIENTS, ROUNDS = 300, 8, 4, 3


def _edit(change: Callable[[dict], object]) -> Callable[[int], bytes]:
    def build(number: int) -> bytes:
        payload = issue_payload(number=number, repo=REPO)
        change(payload)
        return json.dumps(payload).encode()
    return build


HOSTILE_KINDS: dict[str, Callable[[int], bytes]] = {
    "lone surrogate in the title": _edit(lambda p: p["issue"].update(title="video \ud800 stalls")),
    "lone surrogate in the body": _edit(lambda p: p["issue"].update(body="\udfff")),
    "lone surrogate in a label": _edit(lambda p: p["issue"].update(labels=[{"name": "x\udbff"}])),
    "NUL in the title": _edit(lambda p: p["issue"].update(title="a\x00b")),
    "100,000-character title": _edit(lambda p: p["issue"].update(title="x" * 100_000)),
    "issue number 2**63": _edit(lambda p: p["issue"].update(number=2**63)),
    "a body of 25,000 '<!--'": _edit(lambda p: p["issue"].update(body="<!--" * 25_000)),
    "NaN as the issue number": _edit(lambda p: p["issue"].update(number=float("nan"))),
    "issue as a list": _edit(lambda p: p.update(issue=[1, 2])),
    "no issue at all": _edit(lambda p: p.pop("issue")),
    "repository full_name not owner/name": _edit(lambda p: p["repository"].update(full_name="%s%n")),
    "nested 10,000 deep": lambda number: b"[" * 10_000 + b"]" * 10_000,
}


def stored(folder: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(folder / "var/wcml.db", timeout=30) as db:
        return set(db.execute("SELECT delivery_id, task FROM predictions WHERE delivery_id LIKE 'valid-%'"))


def dead_letters(folder: Path) -> dict[str, int]:
    with sqlite3.connect(folder / "var/queue.db", timeout=30) as db:
        rows = db.execute("SELECT headers FROM messages WHERE queue = 'dead'").fetchall()
    reasons: dict[str, int] = {}
    for (headers,) in rows:
        reason = re.sub(r"hostile-[0-9-]+", "hostile-…", json.loads(headers).get("x-wcml-reason", "?"))[:90]
        reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def start(folder: Path, bind: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    log = (folder / "run.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", bind], cwd=folder,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://{bind}/healthz", timeout=120)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the 600 predictions")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wcml-probe-"))
    bind = f"127.0.0.1:{free_port()}"
    process = start(folder, bind)
    secret = (folder / "var/webhook_secret").read_text().strip()
    url = f"http://{bind}/webhooks/github"
    valid = [Sent(f"valid-{n}", json.dumps(issue_payload(number=n, repo=REPO)).encode(), False, "valid")
             for n in range(1, VALID + 1)]
    hostile = [Sent(f"hostile-{i}-{r}-{c}", build(10_000 + i), True, kind)
               for c in range(HOSTILE_CLIENTS) for r in range(ROUNDS)
               for i, (kind, build) in enumerate(HOSTILE_KINDS.items())]
    answers: dict[str, int] = {}

    def send(items: list[Sent], clients: int) -> None:
        with ThreadPoolExecutor(clients) as pool:
            statuses = pool.map(lambda s: post(url, secret, s), items)
            answers.update(zip((s.delivery_id for s in items), statuses, strict=True))

    began = time.monotonic()
    senders = [threading.Thread(target=send, args=(valid, VALID_CLIENTS)),
               threading.Thread(target=send, args=(hostile, HOSTILE_CLIENTS))]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    sent_in = time.monotonic() - began
    expected = {(s.delivery_id, t) for s in valid for t in TASKS}
    deadline, all_at = began + args.wait, None
    while time.monotonic() < deadline:
        if len(stored(folder) & expected) == len(expected):
            all_at = time.monotonic() - began
            break
        time.sleep(0.2)
    within = len(stored(folder) & expected)
    process.terminate()
    process.wait(60)
    process = start(folder, bind)
    time.sleep(5)
    after_restart = len(stored(folder) & expected)
    process.terminate()
    process.wait(60)
    hostile_answers: dict[str, dict[str, int]] = {}
    for s in hostile:
        tally = hostile_answers.setdefault(s.what, {})
        tally[str(answers[s.delivery_id])] = tally.get(str(answers[s.delivery_id]), 0) + 1
    save("hostile_probe", {
        "valid_webhooks": VALID, "valid_clients": VALID_CLIENTS, "hostile_webhooks": len(hostile),
        "hostile_clients": HOSTILE_CLIENTS, "seconds_to_send_all": round(sent_in, 2),
        "valid_accepted": sum(answers[s.delivery_id] in (200, 202) for s in valid),
        "predictions_expected": len(expected), f"predictions_within_{args.wait:g}s": within,
        "seconds_to_all_predictions": round(all_at, 2) if all_at is not None else None,
        "predictions_after_a_restart": after_restart,
        "hostile_answers": hostile_answers, "dead_letters": dead_letters(folder),
    })


if __name__ == "__main__":
    main()
