"""The `wcml` command: help everywhere, one clear line for a bad setting."""

import subprocess
import sys

import pytest

from services.cli import build_parser


def subcommands(parser, prefix=()):
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            yield (*prefix, name)
            yield from subcommands(sub, (*prefix, name))


COMMANDS = list(subcommands(build_parser()))


def wcml(*args, env=None):
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_every_subcommand_has_help():
    assert {("run",), ("ingest",), ("dispatcher",), ("predictor",), ("store",), ("api",),
            ("dead", "list"), ("dead", "requeue"), ("models", "demo")} <= set(COMMANDS)
    for command in COMMANDS:
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args([*command, "--help"])
        assert done.value.code == 0, command


@pytest.mark.parametrize("variable, value, command", [
    ("WCML_BROKER_URL", "redis://localhost", "dispatcher"),
    ("WCML_DATABASE_URL", "", "store"),
    ("WCML_BLOB_URL", "ftp://x", "store"),
])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(variable, value, command, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "WCML_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/",
           "WCML_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "WCML_BLOB_URL": f"file://{tmp_path}",
           variable: value}
    result = wcml(command, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr


def test_distributed_ingest_requires_webhook_secrets(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "WCML_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/",
           "WCML_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "WCML_BLOB_URL": f"file://{tmp_path}"}
    result = wcml("ingest", env=env)
    assert result.returncode == 2 and "WCML_WEBHOOK_SECRETS" in result.stderr


def test_unknown_model_task_is_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "WCML_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/",
           "WCML_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "WCML_BLOB_URL": f"file://{tmp_path}",
           "WCML_MODELS_DIR": str(tmp_path / "models")}
    result = wcml("predictor", "--task", "needsdiagnosis", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no model installed" in result.stderr


# -- only `wcml run` creates credentials (issue 31) ----------------------------------

# They run until stopped; `wcml run` is the one that may create secrets.
SERVING = {("run",), ("ingest",), ("relay",), ("dispatcher",), ("predictor",), ("actions",), ("store",),
           ("latest",), ("api",), ("api-views",), ("follow",), ("github", "follow")}
GROUPS = {("dead",), ("github",), ("dataset",), ("models",)}
OPERATOR_ARGS = {
    ("replay",): ["--quiet"], ("predictions",): [], ("actions", "list"): [], ("store", "repair"): [],
    ("compare",): ["r-1", "--task", "needsdiagnosis", "--model-a", "a", "--model-b", "b"],
    ("dead", "list"): [], ("dead", "requeue"): [], ("github", "redeliver"): [],
    ("dataset", "build"): ["needsdiagnosis", "--from-log", "--out", "nd.jsonl", "--quiet"],
    ("github", "import"): ["acme/app", "--max-issues", "1", "--quiet"],  # GITHUB_API_URL: a closed port
    ("models", "demo"): ["--task", "issuetype"], ("migrate",): [], ("healthcheck",): [],
    ("sample-webhook",): ["--url", "http://127.0.0.1:1/webhooks/github"],
    ("train",): ["issuetype", "--data", "missing.jsonl"],
    ("evaluate",): ["issuetype", "--data", "missing.jsonl"],
}


def test_every_operator_command_is_checked_below():
    assert {c for c in COMMANDS if c not in SERVING | GROUPS} == set(OPERATOR_ARGS)


@pytest.mark.parametrize("urls", ["none set", "embedded URLs set"])
def test_operator_commands_in_a_fresh_folder_create_no_secret(tmp_path, monkeypatch, capfd, urls):
    """Each command through ``main``, as the shell runs it, in a folder of its own."""
    import os
    import signal

    from services import cli

    for name in [k for k in os.environ if k.startswith("WCML_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:1")
    elsewhere = tmp_path / "elsewhere"
    if urls != "none set":
        for name, url in (("BROKER", f"sqlite:///{elsewhere}/queue.db"),
                          ("DATABASE", f"sqlite:///{elsewhere}/wcml.db"), ("BLOB", f"file://{elsewhere}/b")):
            monkeypatch.setenv(f"WCML_{name}_URL", url)
    monkeypatch.setattr(cli.wcml_log, "setup", lambda *_: None)  # leave pytest's log capture in place
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # `replay` sets its own
    said = {}
    try:
        for command, args in OPERATOR_ARGS.items():
            folder = tmp_path / "-".join(command)
            folder.mkdir()
            monkeypatch.chdir(folder)
            try:
                code = cli.main([*command, *args])
            except Exception as exc:  # noqa: BLE001 - what it does beyond reading settings is not the point
                code = type(exc).__name__
            out = capfd.readouterr()
            said[command] = (code, out.out + out.err)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    made = [p for p in tmp_path.rglob("*") if p.name in ("webhook_secret", "api_key")]
    assert made == [], made
    assert not [c for c, (_, text) in said.items() if "generated" in text], said
    assert said[("sample-webhook",)][0] == 2 and "no webhook secret" in said[("sample-webhook",)][1]
