"""`wcml run` with none of the extras' libraries importable (pika, boto3, botocore, psycopg2, gunicorn,
torch: tests/blocked_imports.py), as after a plain `pip install webcompat-ml`: every service builds, a
signed sample webhook is scored, and the prediction is read from the API."""

import os
import subprocess

import pytest

from tests.blocked_imports import wcml_without_extras
from tests.harness import free_port
from tests.processes import get_json, wait_http
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


def test_wcml_run_scores_a_webhook_without_the_extras(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    bind = f"127.0.0.1:{free_port()}"
    log_path = tmp_path / "run.log"
    log = log_path.open("wb")
    server = subprocess.Popen(wcml_without_extras("run", "--bind", bind), cwd=tmp_path, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://{bind}/healthz", timeout=60)
        sent = subprocess.run(wcml_without_extras("sample-webhook", "--url", f"http://{bind}/webhooks/github",
                                                  "--number", "3"),
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0 and sent.stdout.startswith("202"), sent.stdout + sent.stderr

        api_key = (tmp_path / "var/api_key").read_text().strip()

        def both_predicted() -> dict:
            status, body = get_json(f"http://{bind}/api/v1/issues/webcompat/web-bugs/3", api_key)
            assert status == 200 and len(body["predictions"]) == 2, (status, body)
            return body

        body = eventually(both_predicted, timeout=30, interval=0.2, message="both predictions of issue 3")
        assert set(body["predictions"]) == {"needsdiagnosis", "issuetype"}, body
    finally:
        server.terminate()
        code = server.wait(30)
        log.close()
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert "(blocked)" not in output, output[-3000:]  # nothing tried one of them and logged the failure

