"""A plain install (no extra) serves the embedded mode only: a URL or command of the distributed mode
that needs a library an extra brings stops with one line naming the extra, exit status 2. The
libraries are made uninstalled in a child Python (tests/blocked_imports.py), as they are after a plain
`pip install webcompat-ml`."""

from __future__ import annotations

import os
import subprocess

import pytest

from shared.extras import MissingExtra, require, require_for_url
from tests.blocked_imports import EXTRA_MODULES, python_without_extras, run_without_extras

AMQP = "amqp://u:p@127.0.0.1:1/%2F"
PG = "postgresql+psycopg2://u:p@127.0.0.1:1/none"
S3 = "s3://bucket/v1"


def clean_env(tmp_path, **urls) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_"))}
    env.update(WCML_WEBHOOK_SECRETS="s", WCML_API_KEYS="k", WCML_VAR_DIR=str(tmp_path / "var"),
               WCML_MODELS_DIR=str(tmp_path / "models"), **urls)
    return env


def embedded_urls(tmp_path) -> dict[str, str]:
    return {"WCML_BROKER_URL": f"sqlite:///{tmp_path}/queue.db",
            "WCML_DATABASE_URL": f"sqlite:///{tmp_path}/wcml.db",
            "WCML_BLOB_URL": f"file://{tmp_path}/blobs"}


@pytest.mark.parametrize(("command", "urls", "line"), [
    (["dispatcher"], {"WCML_BROKER_URL": AMQP},
     "wcml dispatcher: WCML_BROKER_URL is amqp:// but pika is not installed: "
     "pip install 'webcompat-ml[amqp]'"),
    (["healthcheck"], {"WCML_BROKER_URL": "amqps://u:p@h1:5671/%2F,amqps://u:p@h2:5671/%2F"},
     "wcml healthcheck: WCML_BROKER_URL is amqps:// but pika is not installed: "
     "pip install 'webcompat-ml[amqp]'"),
    (["migrate"], {"WCML_DATABASE_URL": PG},
     "wcml migrate: WCML_DATABASE_URL is postgresql:// but psycopg2 is not installed: "
     "pip install 'webcompat-ml[postgresql]'"),
    (["predictions"], {"WCML_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/none"},  # no driver named
     "wcml predictions: WCML_DATABASE_URL is postgresql:// but psycopg2 is not installed: "
     "pip install 'webcompat-ml[postgresql]'"),
    (["store", "repair"], "embedded+s3",
     "wcml store: WCML_BLOB_URL is s3:// but boto3 is not installed: pip install 'webcompat-ml[s3]'"),
    (["ingest", "--bind", "127.0.0.1:1"], "embedded",
     "wcml ingest: the distributed mode serves HTTP with gunicorn but gunicorn is not installed: "
     "pip install 'webcompat-ml[server]'"),
])
def test_a_missing_extra_is_one_line_naming_it_and_exit_2(tmp_path, command, urls, line):
    if urls == "embedded+s3":
        urls = {**embedded_urls(tmp_path), "WCML_BLOB_URL": S3}
    elif urls == "embedded":
        urls = embedded_urls(tmp_path)
    done = run_without_extras(*command, env=clean_env(tmp_path, **urls), cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.splitlines() == [line], done.stderr[-3000:]
    if command[0] == "ingest":
        assert not (tmp_path / "wcml.db").exists()  # stopped before it migrated or started its relay


def test_the_embedded_urls_need_no_extra(tmp_path):
    done = run_without_extras("migrate", env=clean_env(tmp_path, **embedded_urls(tmp_path)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "database schema is up to date" in done.stdout


def test_require_names_the_extra_and_keeps_other_import_errors(monkeypatch):
    with pytest.raises(MissingExtra) as caught:
        require("wcml_no_such_module", "amqp", "WCML_BROKER_URL is amqp://")
    assert str(caught.value) == ("WCML_BROKER_URL is amqp:// but wcml_no_such_module is not installed: "
                                 "pip install 'webcompat-ml[amqp]'")
    assert caught.value.extra == "amqp"

    def broken(name):  # installed, but one of its own imports fails: that error is not hidden
        raise ModuleNotFoundError("No module named 'six'", name="six")

    monkeypatch.setattr("importlib.import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="six"):
        require("pika", "amqp", "WCML_BROKER_URL is amqp://")


def test_only_the_schemes_of_an_extra_are_checked():
    for url in ("sqlite:///x.db", "memory://", "file:///tmp/b", "postgresql+pg8000://h/db"):
        require_for_url("WCML_X", url)  # nothing to import (pg8000: SQLAlchemy names its own driver)
    require_for_url("WCML_BROKER_URL", AMQP)  # installed in the test environment


def test_the_child_python_cannot_import_any_of_them():
    code = ("import importlib\n"
            f"for name in {EXTRA_MODULES!r}:\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except ModuleNotFoundError:\n        continue\n"
            "    sys.exit(name + ' was imported')\n")
    done = subprocess.run(python_without_extras(code), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
