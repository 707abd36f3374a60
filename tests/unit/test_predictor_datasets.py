"""Data sets: labels from recorded issue histories (REST export and webhooks), readers, the NLBSE files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from services.predictor.tasks import get_task
from services.predictor.training import datasets
from services.predictor.training.datasets import (
    DatasetError,
    build,
    histories_from_log,
    read_export,
    read_labelled,
)
from shared.messages import EventEnvelope

ND, IT = get_task("needsdiagnosis"), get_task("issuetype")
NLBSE = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "nlbse24"
NLBSE_SHA256 = {"issues_train.csv": "18dc42a30aa33dccadb723ad3baeb164d38bff521496f985ca2791c26b8939f5",
                "issues_test.csv": "4f7d8619d4e5adbea126e548fd8c214449288f3a93bb3bc130c54cd307af7e85"}


def api_issue(number: int, title: str, **extra) -> dict:
    """An issue as GET /repos/webcompat/web-bugs/issues/N returns it (fields we read, and some we don't)."""
    return {"url": f"https://api.github.com/repos/webcompat/web-bugs/issues/{number}",
            "repository_url": "https://api.github.com/repos/webcompat/web-bugs",
            "html_url": f"https://github.com/webcompat/web-bugs/issues/{number}", "id": 2000000 + number,
            "number": number, "title": title, "user": {"login": "webcompat-bot", "id": 1},
            "labels": [], "state": "closed", "milestone": None, "comments": 2,
            "body": "<!-- @browser: Firefox 120.0 -->\n**URL**: https://example.com/\n\n"
                    "**Problem type**: Site is not usable\n**Description**: Buttons are missing\n",
            "created_at": "2024-01-10T10:00:00Z", **extra}


def api_event(kind: str, at: str, **fields) -> dict:
    """An item of GET /repos/webcompat/web-bugs/issues/N/events."""
    return {"id": abs(hash((kind, at))) % 10**9, "node_id": "IE_x", "actor": {"login": "triager"},
            "event": kind, "commit_id": None, "commit_url": None, "created_at": at, **fields}


RECORDED = [
    # triaged to needsdiagnosis, then moved on: positive, with the title as reported
    {**api_issue(131001, "example.com - Buttons are missing", milestone={"title": "needscontact"}),
     "events": [api_event("milestoned", "2024-01-10T10:00:01Z", milestone={"title": "needstriage"}),
                api_event("renamed", "2024-01-11T08:00:00Z",
                          rename={"from": "example.com - site is not usable",
                                  "to": "example.com - Buttons are missing"}),
                api_event("demilestoned", "2024-01-11T08:00:01Z", milestone={"title": "needstriage"}),
                api_event("milestoned", "2024-01-11T08:00:02Z", milestone={"title": "needsdiagnosis"}),
                api_event("demilestoned", "2024-02-01T00:00:00Z", milestone={"title": "needsdiagnosis"}),
                api_event("milestoned", "2024-02-01T00:00:01Z", milestone={"title": "needscontact"})]},
    # closed as invalid from triage: negative
    {**api_issue(131002, "example.com - design is broken"),
     "events": [api_event("milestoned", "2024-01-10T10:00:01Z", milestone={"title": "needstriage"}),
                api_event("milestoned", "2024-01-10T12:00:00Z", milestone={"title": "invalid"}),
                api_event("closed", "2024-01-10T12:00:01Z")]},
    # reported behind the moderation placeholder, released (renamed, label removed), then moved to
    # Bugzilla: positive, with the title it was released with
    {"issue": api_issue(131003, "example.com - video does not play"),
     "events": [api_event("labeled", "2024-01-10T10:00:00Z", label={"name": "action-needsmoderation"}),
                api_event("renamed", "2024-01-10T10:05:00Z",
                          rename={"from": "In the moderation queue.",
                                  "to": "example.com - video does not play"}),
                api_event("unlabeled", "2024-01-10T10:05:01Z", label={"name": "action-needsmoderation"}),
                api_event("milestoned", "2024-01-10T11:00:00Z", milestone={"title": "needstriage"}),
                api_event("milestoned", "2024-01-12T11:00:00Z", milestone={"title": "moved"})]},
    # rejected in moderation: never released, left out
    {"issue": api_issue(131005, "Issue closed.", body="Its original content has been deleted."),
     "events": [api_event("renamed", "2024-01-10T10:05:00Z",
                          rename={"from": "In the moderation queue.", "to": "Issue closed."}),
                api_event("closed", "2024-01-10T10:05:01Z")]},
    # a pull request in the export: never an example
    {**api_issue(131004, "Fix typo"), "pull_request": {"url": "x"}, "events": []},
]


@pytest.fixture
def export(tmp_path) -> Path:
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in RECORDED))
    return path


def test_needsdiagnosis_examples_from_a_recorded_api_export(export):
    examples, report = build(ND, read_export(export))
    assert (report.issues, report.examples, report.skipped) == (4, 3, 1)
    got = {issue.number: (issue.title, label) for issue, label in examples}
    assert got == {131001: ("example.com - site is not usable", "needsdiagnosis"),
                   131002: ("example.com - design is broken", "not-needsdiagnosis"),
                   131003: ("example.com - video does not play", "needsdiagnosis")}
    issue = examples[0][0]
    assert issue.repo == "webcompat/web-bugs" and issue.author == "webcompat-bot"
    assert issue.url == "https://github.com/webcompat/web-bugs/issues/131001"


def test_issuetype_examples_from_labels_in_an_export(tmp_path):
    rows = [{**api_issue(1, "Crash on start", labels=[{"name": "type: bug"}]), "events": []},
            {**api_issue(2, "Add dark mode", labels=[{"name": "enhancement"}]), "events": []},
            {**api_issue(3, "Unlabelled"), "events": []}]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    examples, report = build(IT, read_export(path))
    assert [(i.number, label) for i, label in examples] == [(1, "bug"), (2, "feature")]
    assert report.skipped == 1


def _webhook(position: int, action: str, issue: dict, **payload) -> EventEnvelope:
    return EventEnvelope(position=position, delivery_id=f"d{position}", event="issues", action=action,
                         repo="webcompat/web-bugs", issue_number=issue["number"], sender="triager",
                         received_at=f"2024-01-1{position % 10}T00:00:00+00:00",
                         payload={"action": action, "issue": issue, "sender": {"login": "triager"},
                                  "repository": {"full_name": "webcompat/web-bugs"}, **payload})


def test_histories_from_the_event_log_follow_webhook_shapes():
    opened = api_issue(7, "example.com - site is not usable")
    renamed = {**opened, "title": "example.com - login fails"}
    envelopes = [
        _webhook(1, "opened", opened),
        _webhook(2, "edited", renamed, changes={"title": {"from": "example.com - site is not usable"}}),
        _webhook(3, "edited", renamed, changes={"body": {"from": "old body"}}),  # not a rename
        _webhook(4, "milestoned", {**renamed, "milestone": {"title": "needsdiagnosis"}},
                 milestone={"title": "needsdiagnosis"}),
        _webhook(5, "opened", api_issue(8, "In the moderation queue.")),
        EventEnvelope(position=6, delivery_id="d6", event="push", action=None, repo="webcompat/web-bugs",
                      issue_number=None, sender="x", received_at="2024-01-16T00:00:00+00:00", payload={}),
    ]
    histories = histories_from_log(reversed(envelopes))  # position order, not arrival order, counts
    assert [issue["number"] for issue, _ in histories] == [7, 8]
    issue, events = histories[0]
    assert [e["event"] for e in events] == ["renamed", "milestoned"]
    examples, report = build(ND, histories)
    assert [(i.number, i.title, label) for i, label in examples] == [
        (7, "example.com - site is not usable", "needsdiagnosis")]
    assert report.skipped == 1  # the one still in moderation


def test_imported_events_keep_the_time_they_happened_on_github():
    """Imported in one go (log times a second apart, reversed), two renames still count in the order
    they happened: the original title is the first rename's ``from``."""
    issue = api_issue(9, "third title")
    envelopes = [
        _webhook(1, "edited", issue, changes={"title": {"from": "second title"}},
                 imported={"created_at": "2023-03-01T00:00:00Z"}),
        _webhook(2, "edited", issue, changes={"title": {"from": "first title"}},
                 imported={"created_at": "2023-02-01T00:00:00Z"}),
    ]
    [(_, events)] = histories_from_log(envelopes)
    assert [e["created_at"] for e in events] == ["2023-03-01T00:00:00Z", "2023-02-01T00:00:00Z"]
    [(snapshot, _)], _ = build(ND, histories_from_log(envelopes))
    assert snapshot.title == "first title"


MODERATION_BODY = ("<p>Thanks for the report. This issue is in the moderation queue; a human will "
                   "review it shortly.</p>")


def test_a_moderated_report_from_the_event_log_keeps_the_title_and_body_it_was_released_with():
    """webcompat.com's moderation, as its webhooks record it: the report opened under the placeholder
    with the ``action-needsmoderation`` label; on release one edit replaces title and body, then the
    label goes (the event the needsdiagnosis rule scores); triage follows."""
    queued = api_issue(9, "In the moderation queue.", body=MODERATION_BODY,
                       labels=[{"name": "action-needsmoderation"}])
    released = {**api_issue(9, "example.com - video does not play"), "labels": []}
    envelopes = [
        _webhook(1, "opened", queued),
        _webhook(2, "labeled", queued, label={"name": "action-needsmoderation"}),
        _webhook(3, "edited", {**released, "labels": queued["labels"]},
                 changes={"title": {"from": "In the moderation queue."}, "body": {"from": MODERATION_BODY}}),
        _webhook(4, "unlabeled", released, label={"name": "action-needsmoderation"}),
        _webhook(5, "milestoned", {**released, "milestone": {"title": "sitewait"}},
                 milestone={"title": "sitewait"}),
        _webhook(6, "opened", {**queued, "number": 10}),  # still in the queue
    ]
    examples, report = build(ND, histories_from_log(envelopes))
    assert (report.examples, report.skipped) == (1, 1)
    (issue, label), = examples
    assert (issue.number, issue.title, label) == (9, "example.com - video does not play", "needsdiagnosis")
    assert issue.body == released["body"] and "moderation" not in ND.text(issue)


def test_dataset_round_trip_and_bad_files(tmp_path, export):
    examples, _ = build(ND, read_export(export))
    path = tmp_path / "out" / "nd.jsonl"
    assert datasets.write_dataset(path, examples) == 3
    issues, labels = read_labelled(path)
    assert [(i.number, i.title) for i in issues] == [(e.number, e.title) for e, _ in examples]
    assert labels == ["needsdiagnosis", "not-needsdiagnosis", "needsdiagnosis"]
    (tmp_path / "bad.jsonl").write_text('{"title": "x", "label": "bug"}\n{nope\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not JSON"):
        read_labelled(tmp_path / "bad.jsonl")
    with pytest.raises(DatasetError, match="unknown data format"):
        read_labelled(export.rename(tmp_path / "x.txt"))
    with pytest.raises(DatasetError, match="no such data file"):
        read_labelled(tmp_path / "missing.csv")


def test_nlbse_csv_with_a_body_over_the_default_field_limit(tmp_path):
    path = tmp_path / "issues.csv"
    body = "stack frame\n" * 20000  # 240 KB, over csv's 128 KiB default
    path.write_text('repo,created_at,label,title,body\nfacebook/react,2023-01-01,bug,"Crash, badly","'
                    + body + '"\n')
    issues, labels = read_labelled(path)
    assert labels == ["bug"] and issues[0].title == "Crash, badly" and len(issues[0].body) == len(body)
    assert issues[0].repo == "facebook/react"
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="not an NLBSE CSV"):
        read_labelled(tmp_path / "other.csv")


def nlbse_file(name: str) -> Path:
    path = NLBSE / name
    assert path.is_file(), (f"NLBSE'24 data missing: {path} (docs/predictor.md, Data sources, says where it "
                            f"comes from)")
    return path


@pytest.mark.parametrize("name", sorted(NLBSE_SHA256))
def test_the_published_nlbse_splits_read_as_published(name):
    path = nlbse_file(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NLBSE_SHA256[name]
    issues, labels = read_labelled(path)
    assert len(issues) == 1500
    counts = {(i.repo, label) for i, label in zip(issues, labels, strict=True)}
    assert len(counts) == 15 and set(labels) == {"bug", "feature", "question"}
