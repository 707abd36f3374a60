"""The @octokit/webhooks-examples payloads (npm, installed by scripts/test into .cache/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

INDEX = (Path(__file__).parent.parent / ".cache/octokit/node_modules/@octokit/webhooks-examples"
         / "api.github.com/index.json")


def examples() -> list[tuple[str, dict]]:
    """(event name, payload) for every example of every event."""
    if not INDEX.exists():
        pytest.fail(f"{INDEX} is missing: run scripts/test, or npm install --prefix .cache/octokit "
                    "@octokit/webhooks-examples@7.6.1", pytrace=False)
    return [(event["name"], payload) for event in json.loads(INDEX.read_text())
            for payload in event["examples"]]
