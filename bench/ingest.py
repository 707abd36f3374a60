"""Ingest throughput: signed webhooks/s accepted (202, committed to PostgreSQL, relayed to RabbitMQ),
beside the bare ceiling (a Flask app that only checks the HMAC) in the same run, with the same server
settings: gunicorn gthread workers, by default 2 of 16 threads each (`wcml ingest`'s defaults).

Load: wrk from a second process on loopback, every request a new delivery id.
    .venv/bin/python -m bench.ingest [--seconds 10] [--connections 16] [--workers 2] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

from bench.common import Service, free_port, fresh_database, fresh_vhost, save, wait_http
from services.samples import issue_payload, signed_request
from tests.waiting import eventually

SECRET = "bench-secret"
LUA = """
local count = 0
function setup(thread) _G.n = (_G.n or 0) + 1; thread:set("tid", _G.n) end
function request()
  count = count + 1
  return wrk.format("POST", "/webhooks/github", {
    ["Content-Type"] = "application/json", ["X-GitHub-Event"] = "issues",
    ["X-GitHub-Delivery"] = "%(run)s-" .. tid .. "-" .. count,
    ["X-Hub-Signature-256"] = "%(signature)s"}, %(body)s)
end
"""


def wrk_script(folder: Path) -> Path:
    request = signed_request("http://x/", SECRET, "issues", issue_payload(number=1), delivery_id="x")
    script = folder / "webhook.lua"
    script.write_text(
        LUA
        % {
            "run": uuid.uuid4().hex[:8],
            "signature": request.get_header("X-hub-signature-256"),
            "body": json.dumps(request.data.decode()),
        }
    )
    return script


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    return {
        "requests_per_s": rate,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    # both apps alike; `wcml ingest`'s defaults (a worker's request threads share its commits)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wcml-bench-ingest-"))
    script = wrk_script(folder)

    port = free_port()
    bare = Service(
        "bare",
        [
            str(Path(".venv/bin/gunicorn").resolve()),
            "-w",
            str(args.workers),
            "-k",
            "gthread",
            "--threads",
            str(args.threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.bare_app:app",
        ],
        {"WCML_WEBHOOK_SECRETS": SECRET},
        folder,
        module=False,
    )
    try:
        _wait_post(port)
        wrk(f"http://127.0.0.1:{port}", script, 2, args.connections)  # warm-up
        ceiling = wrk(f"http://127.0.0.1:{port}", script, args.seconds, args.connections)
    finally:
        bare.stop()

    db_url, drop_db = fresh_database()
    amqp_url, drop_vhost = fresh_vhost()
    port = free_port()
    env = {
        "WCML_BROKER_URL": amqp_url,
        "WCML_DATABASE_URL": db_url,
        "WCML_BLOB_URL": f"file://{folder}/blobs",
        "WCML_WEBHOOK_SECRETS": SECRET,
    }
    ingest = Service("ingest", ["ingest", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
                                "--threads", str(args.threads)], env, folder)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        wrk(f"http://127.0.0.1:{port}", script, 2, args.connections)
        measured = wrk(f"http://127.0.0.1:{port}", script, args.seconds, args.connections)
        memory = ingest.peak_rss_mib()
    finally:
        ingest.stop()
        drop_db()
        drop_vhost()

    save(
        "ingest",
        {
            "setup": f"gunicorn {args.workers} gthread worker(s) x {args.threads} threads each, both apps; "
            f"wrk -t2 -c{args.connections} -d{args.seconds}s; "
            "ingest commits every delivery to PostgreSQL and relays it to RabbitMQ",
            "bare_hmac_202": ceiling,
            "ingest": measured,
            "ratio_to_bare": round(measured["requests_per_s"] / ceiling["requests_per_s"], 3),
            "ingest_peak_rss_mib": memory,
        },
    )


def _wait_post(port: int) -> None:
    """Until the bare app answers a POST (it refuses the unsigned body: an answer all the same)."""
    import urllib.error
    import urllib.request

    def answers() -> bool:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/github", data=b"{}")
        try:
            urllib.request.urlopen(request, timeout=1).close()
        except urllib.error.HTTPError:
            pass
        return True  # a refused connection raises: not yet

    eventually(answers, timeout=30, message=f"the bare app on port {port}")


if __name__ == "__main__":
    main()
