"""Only `wcml run` creates credentials: the operator commands read an instance's var/ and write none.

An instance started with WCML_WEBHOOK_SECRETS and WCML_API_KEYS keeps no secret of its own; a
`wcml dead list` beside it, with or without those variables, must not make one up (issue 31).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import free_port
from tests.processes import wait_http

pytestmark = pytest.mark.e2e

SECRET, KEY = "operator-secret-0123456789", "operator-key-0123456789"
CREDENTIALS = ("webhook_secret", "api_key")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def wcml(folder: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def test_dead_list_beside_an_instance_started_with_its_credentials_set_writes_nothing(tmp_path):
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    started = {**plain, "WCML_WEBHOOK_SECRETS": SECRET, "WCML_API_KEYS": KEY, "PYTHONUNBUFFERED": "1"}
    bind = f"127.0.0.1:{free_port()}"
    with (tmp_path / "run.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", bind],
                                  cwd=tmp_path, env=started, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://{bind}/healthz", timeout=90)
            running = wcml(tmp_path, plain, "dead", "list")  # as issue 31 saw it: the server up
            assert running.returncode == 0, running.stderr
        finally:
            server.terminate()
            code = server.wait(30)
    assert code == 0, (tmp_path / "run.log").read_text()[-2000:]
    var = tmp_path / "var"
    before = snapshot(var)
    assert {"wcml.db", "queue.db", "instance.json"} <= set(before)
    assert not set(CREDENTIALS) & set(before), sorted(before)  # the set ones are not written down
    assert "generated" not in (tmp_path / "run.log").read_text() + running.stdout + running.stderr

    for env in (started, plain):
        listed = wcml(tmp_path, env, "dead", "list")
        assert listed.returncode == 0 and "0 dead-lettered message(s) shown" in listed.stderr, listed.stderr
        assert snapshot(var) == before  # the same files, byte for byte
        said = listed.stdout + listed.stderr
        assert "generated" not in said and SECRET not in said and KEY not in said, said


def test_a_first_start_keeps_a_secret_file_already_there(tmp_path):
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    (tmp_path / "var").mkdir()
    kept = tmp_path / "var/webhook_secret"
    kept.write_text("kept-secret-0123456789\n")
    kept.chmod(0o600)
    bind = f"127.0.0.1:{free_port()}"
    with (tmp_path / "run.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", bind],
                                  cwd=tmp_path, env={**plain, "PYTHONUNBUFFERED": "1"}, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://{bind}/healthz", timeout=90)
            signed = wcml(tmp_path, plain, "sample-webhook", "--url", f"http://{bind}/webhooks/github")
            assert signed.returncode == 0 and signed.stdout.startswith("202"), signed.stdout + signed.stderr
        finally:
            server.terminate()
            code = server.wait(30)
    output = (tmp_path / "run.log").read_text()
    assert code == 0, output[-2000:]
    assert kept.read_text() == "kept-secret-0123456789\n"  # used as it was, not replaced
    assert "generated api key" in output and "generated webhook secret" not in output
