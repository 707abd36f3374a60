"""The README's first command: `wcml run` serves everything; a signed sample webhook becomes a prediction."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from tests.harness import free_port
from tests.processes import get_json, wait_http
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


def test_wcml_run_serves_webhooks_api_and_dashboard_without_external_services(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    bind = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "run.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", bind], cwd=tmp_path,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://{bind}/healthz", timeout=60)
        output = (tmp_path / "run.log").read_text()
        assert "generated webhook secret" in output and "trained a demo model" in output
        assert (tmp_path / "var/wcml.db").exists()
        for private in ("wcml.db", "queue.db", "webhook_secret", "api_key"):
            assert (tmp_path / "var" / private).stat().st_mode & 0o077 == 0, private

        sent = subprocess.run([sys.executable, "-m", "services.cli", "sample-webhook", "--url",
                               f"http://{bind}/webhooks/github", "--number", "7"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0 and sent.stdout.startswith("202"), sent.stdout + sent.stderr

        api_key = (tmp_path / "var/api_key").read_text().strip()
        def both_predicted() -> dict:
            status, body = get_json(f"http://{bind}/api/v1/issues/webcompat/web-bugs/7", api_key)
            assert status == 200 and len(body["predictions"]) == 2, (status, body)
            return body

        body = eventually(both_predicted, timeout=30, interval=0.2, message="both predictions of issue 7")
        assert set(body["predictions"]) == {"needsdiagnosis", "issuetype"}, body
        latest = tmp_path / "var/blobs/needsdiagnosis/webcompat/web-bugs/7.json"
        # the row commits first, then the document is written
        eventually(latest.exists, timeout=10, message=f"the document {latest}")
        document = json.loads(latest.read_text())
        assert document["label"] == body["predictions"]["needsdiagnosis"]["label"]

        # The README's operating commands, as written, in the instance's folder (no WCML_* set).
        def wcml(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)

        listed = wcml("predictions", "--task", "needsdiagnosis", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [json.loads(line)["number"] for line in listed.stdout.splitlines()] == [7]
        assert listed.stderr.count("using the embedded instance in var/") == 1, listed.stderr
        built = wcml("dataset", "build", "needsdiagnosis", "--from-log", "--out", "nd.jsonl", "--quiet")
        assert built.returncode == 0 and "1 labelled issue(s) from 1" in built.stdout, built.stderr
        replayed = wcml("replay", "--task", "issuetype", "--quiet")
        assert replayed.returncode == 0 and ": done, 1/1 published" in replayed.stdout, replayed.stderr
        run_id = replayed.stdout.split(":")[0].removeprefix("replay ")

        def run_shown(run: str) -> dict:
            status, body = get_json(f"http://{bind}/api/v1/replays/{run}", api_key)
            assert status == 200 and (body["state"], body["published"]) == ("done", 1), (status, body)
            return body

        # The command line's run, reported through the instance's queue file to the API's read model.
        eventually(lambda: run_shown(run_id), timeout=30, message=f"replay {run_id} done in the API")
        # One asked for over the API is there the moment the answer is: polled at once, then done.
        ask = urllib.request.Request(f"http://{bind}/api/v1/replays", method="POST",
                                     data=json.dumps({"tasks": ["needsdiagnosis"]}).encode(),
                                     headers={"Authorization": f"Bearer {api_key}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(ask, timeout=10) as answer:
            assert answer.status == 202
            asked = json.loads(answer.read())
        status, at_once = get_json(f"http://{bind}/api/v1/replays/{asked['id']}", api_key)
        assert status == 200 and at_once["id"] == asked["id"], (status, at_once)
        eventually(lambda: run_shown(asked["id"]), timeout=30, message="the API's replay done")
        dead = wcml("dead", "list")
        assert dead.returncode == 0 and "0 dead-lettered message(s) shown" in dead.stderr, dead.stderr
        repaired = wcml("store", "repair")
        assert repaired.returncode == 0 and "wrote 0 missing or stale document(s)" in repaired.stdout
        secrets = sorted(path.name for path in (tmp_path / "var").iterdir() if "secret" in path.name)
        assert secrets == ["webhook_secret"]  # no command wrote another beside the instance
    finally:
        server.terminate()
        code = server.wait(30)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()[-2000:]
