"""`wcml predictions` as a user runs it: a subprocess on a PostgreSQL database, table or JSON lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from services.api import queries
from shared.database import create_engine
from tests.builders import make, store


@pytest.fixture
def seeded(pg_url, tmp_path):
    engine = create_engine(pg_url)
    store(engine, tmp_path, [make(i) for i in range(30)])
    yield engine
    engine.dispose()


@pytest.fixture
def wcml(pg_url, tmp_path):
    env = {**os.environ, "WCML_DATABASE_URL": pg_url, "WCML_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/",
           "WCML_BLOB_URL": f"file://{tmp_path}/blobs"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli", "predictions", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    return run


def test_json_lines_are_the_api_items(wcml, seeded):
    result = wcml("--task", "issuetype", "--label", "bug", "--replay", "none", "--limit", "500", "--json")
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in result.stdout.splitlines()]
    expected = queries.list_predictions(seeded, {"task": "issuetype", "label": "bug", "replay": "none"},
                                        limit=500).items
    assert items == expected and items
    assert result.stderr == ""  # one page, nothing more to say


def test_table_is_aligned_and_pages_with_the_printed_cursor(wcml, seeded):
    expected = [p["id"] for p in queries.list_predictions(seeded, {"min_confidence": "0.5"}, limit=500).items]
    seen, cursor, pages = [], None, 0
    while True:
        result = wcml("--min-confidence", "0.5", "--limit", "4", *(["--cursor", cursor] if cursor else []))
        assert result.returncode == 0, result.stderr
        header, *rows = result.stdout.splitlines()
        assert header.split() == "id predicted issue task label confidence model replay".split()
        starts = header.index("task"), header.index("label")
        for row in rows:  # every row's task and label begin under their headings
            assert row[starts[0] - 1] == " " and row[starts[0]] != " " and row[starts[1]] != " "
        seen += [int(row.split()[0]) for row in rows]
        pages += 1
        more = re.fullmatch(r"more: --cursor (\S+)\n", result.stderr)
        if not more:
            assert result.stderr == ""
            break
        cursor = more.group(1)
    assert seen == expected and pages == -(-len(expected) // 4)


def test_latest_per_task_of_an_issue(wcml, seeded):
    result = wcml("--latest", "--repo", "webcompat/web-bugs", "--issue", "2", "--json")
    assert result.returncode == 0, result.stderr
    got = {item["task"]: item for item in map(json.loads, result.stdout.splitlines())}
    assert got == queries.latest_for_issue(seeded, "webcompat/web-bugs", 2) and got
    missing = wcml("--latest", "--repo", "webcompat/web-bugs", "--issue", "999")
    assert missing.returncode == 1 and missing.stdout == "" and "no predictions" in missing.stderr


@pytest.mark.parametrize("args, word", [
    (["--since", "yesterday"], "since"), (["--limit", "1000"], "limit"), (["--cursor", "nope"], "cursor"),
    (["--repo", "nosuchslash"], "repo"), (["--latest", "--repo", "a/b"], "--issue"),
])
def test_bad_input_is_one_line_and_status_2(wcml, seeded, args, word):
    result = wcml(*args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wcml predictions:") and word in lines[0]


def test_unreachable_database_is_one_line(tmp_path):
    env = {**os.environ, "WCML_DATABASE_URL": "postgresql+psycopg2://nobody:secret@127.0.0.1:1/none",
           "WCML_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/", "WCML_BLOB_URL": f"file://{tmp_path}"}
    result = subprocess.run([sys.executable, "-m", "services.cli", "predictions"], capture_output=True,
                            text=True, timeout=60, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "cannot query" in lines[0]
    assert "secret" not in result.stderr
