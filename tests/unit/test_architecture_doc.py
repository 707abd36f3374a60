"""docs/architecture.md's map is the declaration's: every declared service has its row in the
services table (and nothing else does), and every exchange and queue the declaration names is on the
page, so the page a newcomer reads first cannot drift from ``shared/topology.py``."""

from __future__ import annotations

import re
from pathlib import Path

from shared import topology

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def services_table(text: str) -> list[str]:
    """The first cell of each row of the table headed ``| service | consumes |``."""
    rows = []
    for line in text[text.index("| service | consumes |"):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(re.match(r"\|\s*`([^`]+)`", line).group(1))
    return rows


def test_the_services_table_lists_every_declared_service_and_no_other():
    assert services_table(PAGE.read_text(encoding="utf-8")) == [s.name for s in topology.SERVICES]


def test_every_exchange_and_queue_declared_is_on_the_page():
    text = PAGE.read_text(encoding="utf-8")
    queues = {q.name.replace("{task}", "<task>") for spec in topology.SERVICES for q in spec.consumes}
    names = {e.name for e in topology.EXCHANGES} | {q.name for q in topology.QUEUES} | queues
    assert sorted(name for name in names if f"`{name}`" not in text) == []


def test_the_table_reader_finds_a_missing_row():
    page = PAGE.read_text(encoding="utf-8")
    row = next(line for line in page.splitlines() if line.startswith("| `latest` |"))
    assert "latest" not in services_table(page.replace(row + "\n", ""))
