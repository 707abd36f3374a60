"""Training data: built from issue histories (event log or GitHub API export), read back for training.

A dataset file is JSON lines, one labelled issue a line: repo, number, url, title, body, author, label.
``read_labelled`` also reads the NLBSE'24 CSV (repo, created_at, label, title, body) as it is published.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.predictor.tasks import Task
from shared.errors import UserError
from shared.issues import NotAnIssueError, snapshot_of_record
from shared.messages import EventEnvelope, IssueSnapshot

History = tuple[dict[str, Any], list[dict[str, Any]]]  # (REST issue object, its REST issue events)


class DatasetError(UserError, ValueError):
    """A data file that is missing, of an unknown format, or malformed at a given line."""


@dataclass
class BuildReport:
    issues: int = 0
    examples: int = 0
    skipped: int = 0


# -- building: histories in, (snapshot, label) examples out ----------------------

def build(task: Task, histories: Iterable[History], progress: Callable[[Iterable], Iterable] = iter
          ) -> tuple[list[tuple[IssueSnapshot, str]], BuildReport]:
    """Apply the task's label rule to every history; issues it leaves out are counted, not kept."""
    examples, report = [], BuildReport()
    for issue, events in progress(histories):
        report.issues += 1
        try:
            example = task.example_from_history(issue, events)
        except NotAnIssueError as exc:
            raise DatasetError(f"history {report.issues}: {exc}") from None
        if example is None:
            report.skipped += 1
        else:
            examples.append(example)
    report.examples = len(examples)
    return examples, report


def read_export(path: Path) -> Iterator[History]:
    """A GitHub API export, JSON lines: an issue object carrying its events under ``events``, or
    ``{"issue": {...}, "events": [...]}``. Pull requests (issues with ``pull_request``) are left out."""
    for number, row in _json_lines(path):
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object")
        issue = row.get("issue") if isinstance(row.get("issue"), dict) else row
        events = row.get("events", issue.get("events")) or []
        if not isinstance(events, list):
            raise DatasetError(f"{path}:{number}: events must be a list")
        if issue.get("pull_request"):
            continue
        yield {k: v for k, v in issue.items() if k != "events"}, events


def _webhook_event(envelope: EventEnvelope) -> dict[str, Any] | None:
    """The REST issue-event (``/issues/N/events`` shape) that an ``issues`` webhook stands for."""
    payload, action = envelope.payload, envelope.action
    # When it happened: an imported event's own time on GitHub (its log time is when it was imported).
    imported = payload.get("imported") if isinstance(payload.get("imported"), dict) else {}
    when = imported.get("created_at") or envelope.received_at
    base = {"event": action, "created_at": when, "actor": payload.get("sender")}
    if action in ("milestoned", "demilestoned"):
        issue_milestone = (payload.get("issue") or {}).get("milestone")
        return {**base, "milestone": payload.get("milestone") or issue_milestone}
    if action in ("labeled", "unlabeled"):
        return {**base, "label": payload.get("label")}
    if action == "edited":
        old = ((payload.get("changes") or {}).get("title") or {}).get("from")
        if old is None:
            return None
        return {**base, "event": "renamed",
                "rename": {"from": old, "to": (payload.get("issue") or {}).get("title")}}
    if action in ("closed", "reopened", "assigned", "unassigned", "locked", "unlocked"):
        return base
    return None


def histories_from_log(envelopes: Iterable[EventEnvelope]) -> list[History]:
    """Group ``issues`` webhooks by issue; the newest payload's issue is the issue as it is now."""
    issues: dict[tuple[str, int], dict[str, Any]] = {}
    events: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for envelope in sorted(envelopes, key=lambda e: e.position):
        issue = envelope.payload.get("issue") if isinstance(envelope.payload, dict) else None
        if envelope.event != "issues" or not isinstance(issue, dict) or issue.get("pull_request"):
            continue
        repo = envelope.repo or ((envelope.payload.get("repository") or {}).get("full_name") or "")
        key = (repo, int(issue.get("number") or envelope.issue_number or 0))
        issues[key] = {**issue, "repo": repo}
        event = _webhook_event(envelope)
        events.setdefault(key, [])
        if event is not None:
            events[key].append(event)
    return [(issues[key], events[key]) for key in issues]


# -- dataset files -------------------------------------------------------------

def write_dataset(path: Path, examples: Iterable[tuple[IssueSnapshot, str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for issue, label in examples:
            row = {k: v for k, v in asdict(issue).items() if k != "labels"}
            f.write(json.dumps({**row, "label": label}, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_labelled(path: Path) -> tuple[list[IssueSnapshot], list[str]]:
    """Issues and labels from a dataset file (.jsonl) or an NLBSE'24 CSV (.csv)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such data file: {path}")
    if path.suffix.lower() == ".csv":
        return _read_nlbse_csv(path)
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        issues, labels = [], []
        for number, row in _json_lines(path):
            try:
                issues.append(snapshot_of_record(row, number=number))
                labels.append(str(row["label"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise DatasetError(f"{path}:{number}: not a labelled issue ({exc})") from None
        return issues, labels
    raise DatasetError(f"{path}: unknown data format (expected .csv or .jsonl)")


def _read_nlbse_csv(path: Path) -> tuple[list[IssueSnapshot], list[str]]:
    csv.field_size_limit(sys.maxsize)  # some issue bodies exceed the 128 KiB default
    issues, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"repo", "label", "title", "body"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: not an NLBSE CSV (missing column(s) {', '.join(sorted(missing))})")
        for row in reader:
            issues.append(snapshot_of_record(row, number=reader.line_num))  # NLBSE rows have no number
            labels.append(row["label"].strip())
    return issues, labels


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
