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
