"""A service declared in one place runs in both modes and fails the deployment files' check until they
run it. ``tests/declared_extra.py`` adds ``audit`` (a consumer of a queue of its own, ``results.audit``,
bound to every prediction) to the declaration, and nothing else: no CLI, pipeline or broker code
names it."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from services import cli
from shared import topology
from shared.broker import Outgoing, connect
from shared.event_routes import load_rules, tasks_of
from tests import declared_extra
from tests.deploy_tools import ROOT
from tests.deployment_topology import differences
from tests.harness import free_port
from tests.processes import ServiceProcess, wait_http
from tests.waiting import eventually

pytestmark = pytest.mark.e2e
LAUNCH = [sys.executable, "-m", "tests.declared_extra"]  # `wcml …` with audit declared


@pytest.fixture
def declared(monkeypatch):
    monkeypatch.setattr(topology, "SERVICES", (*topology.SERVICES, declared_extra.AUDIT))


def launch_env(**variables: str) -> dict[str, str]:
    """This environment without WCML_* settings, the repository importable, and ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **variables}


def test_it_is_a_wcml_command_with_its_help_line(declared):
    parser = cli.build_parser()
    args = parser.parse_args(["audit"])
    assert args.func is cli.run_service and set(args.needs) == {topology.BROKER}
    assert parser._subparsers._group_actions[0].choices["audit"].description == declared_extra.AUDIT.help
    listed = subprocess.run([*LAUNCH, "--help"], env=launch_env(), capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "\n    audit " in listed.stdout, listed.stdout + listed.stderr


def test_it_runs_as_a_distributed_process_consuming_its_queue_over_rabbitmq(amqp_url, tmp_path):
    audit_file = tmp_path / "audit.jsonl"
    env = launch_env(WCML_BROKER_URL=amqp_url, WCML_AUDIT_FILE=str(audit_file))
    process = ServiceProcess("audit", [], env, tmp_path, command=[*LAUNCH, "audit"])
    try:
        eventually(lambda: "audit consuming results.audit" in process.output(), timeout=30,
                   message=lambda: f"the audit process to consume\n{process.output()}")
        broker = connect(amqp_url)
        try:
            body = json.dumps({"v": 1, "kind": "prediction", "task": "issuetype"}).encode()
            broker.publish([Outgoing(topology.RESULTS_EXCHANGE, "issuetype", body, message_id="audit-1")])
            eventually(lambda: declared_extra.audited(audit_file), timeout=30,
                       message=lambda: f"the audit file\n{process.output()}")
            assert declared_extra.audited(audit_file) == [{"key": "issuetype", "body": body.decode()}]
            assert broker.queue_depth("results.audit") == 0  # read and acknowledged
            assert broker.queue_depth("results.store") == 1  # the declared queues are there, untouched
        finally:
            broker.close()
    finally:
        code = process.stop()
    assert code == 0, process.output()


def test_it_runs_inside_the_embedded_mode(tmp_path):
    audit_file = tmp_path / "audit.jsonl"
    env = launch_env(WCML_AUDIT_FILE=str(audit_file))
    bind = f"127.0.0.1:{free_port()}"
    server = ServiceProcess("run", [], env, tmp_path, command=[*LAUNCH, "run", "--bind", bind], cwd=tmp_path)
    try:
        wait_http(f"http://{bind}/healthz", timeout=60)
        sent = subprocess.run([sys.executable, "-m", "services.cli", "sample-webhook", "--url",
                               f"http://{bind}/webhooks/github", "--number", "3"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0 and sent.stdout.startswith("202"), sent.stdout + sent.stderr
        tasks = set(tasks_of(load_rules(None)))
        eventually(lambda: {line["key"] for line in declared_extra.audited(audit_file)} == tasks, timeout=30,
                   message=lambda: f"a prediction of each task in the audit file\n{server.output()}")
    finally:
        code = server.stop()
    assert code == 0, server.output()


def test_the_deployment_files_check_names_it_until_they_run_it(declared):
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    tasks = tasks_of(load_rules(None))
    assert differences(compose, [], tasks)[0] == \
        "compose.yaml: the declared service `audit` runs nowhere (no `audit` running `wcml audit`)"
    compose["services"]["audit"] = {**compose["services"]["dispatcher"], "command": ["audit"]}
    assert [d for d in differences(compose, [], tasks) if d.startswith("compose.yaml")] == []
