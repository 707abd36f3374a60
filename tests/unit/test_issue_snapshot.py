"""One mapping from a GitHub issue to the model's input: the same `issues.opened` webhook reaches a
model through serving (dispatcher -> task message on the broker -> predictor) and through training
(event log -> histories -> data set file -> reader) as the same text, repository, number, url, author."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from services.ingest.webhook import parse
from services.predictor.tasks import get_task
from services.predictor.training.datasets import build, histories_from_log, read_labelled, write_dataset
from shared.event_routes import NotAnIssueEvent, load_rules, route
from shared.issues import NotAnIssueError, issue_url, representable, snapshot_of_issue, snapshot_of_record
from shared.messages import EventEnvelope, TaskMessage, decode, encode

SECRET = "s3cret"
REPO = "webcompat/web-bugs"
NUMBER = 131551
BODY = ("<!-- @browser: Firefox 123.0 -->\n<!-- @reported_with: unknown -->\n\n"
        "**URL**: https://www.nytimes.com/2024/01/10/world/europe/article.html\n\n"
        "**Browser / Version**: Firefox 123.0\n**Operating System**: Linux\n"
        "**Tested Another Browser**: Yes Safari\n\n**Problem type**: Design is broken\n"
        "**Description**: Items are misaligned\n**Steps to Reproduce**:\nArticle text is rendered in a "
        "very narrow column with a huge left margin; images overflow the column.\n\n"
        "<details>\n<summary>Browser Configuration</summary>\n<ul>\n  <li>gfx.webrender.all: false</li>\n"
        "</ul>\n</details>\n\n_From [webcompat.com](https://webcompat.com/) with ❤️_")


def user(login: str, uid: int) -> dict:
    return {"login": login, "id": uid, "node_id": f"U_{uid}", "type": "User", "site_admin": False,
            "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}"}


def opened_payload() -> dict:
    """An `issues.opened` delivery as GitHub sends it (the fields of the webhook docs' example)."""
    reporter = user("bug-hunter-42", 4242)
    api = f"https://api.github.com/repos/{REPO}"
    return {
        "action": "opened",
        "issue": {
            "url": f"{api}/issues/{NUMBER}", "repository_url": api,
            "labels_url": f"{api}/issues/{NUMBER}/labels{{/name}}",
            "comments_url": f"{api}/issues/{NUMBER}/comments", "events_url": f"{api}/issues/{NUMBER}/events",
            "html_url": f"https://github.com/{REPO}/issues/{NUMBER}", "id": 2077000001,
            "node_id": "I_kwDOAvkAbc5790", "number": NUMBER,
            "title": "www.nytimes.com - items are misaligned", "user": reporter,
            "labels": [{"id": 1, "node_id": "LA_1", "url": f"{api}/labels/browser-firefox",
                        "name": "browser-firefox", "color": "ededed", "default": False, "description": None},
                       {"id": 2, "node_id": "LA_2", "url": f"{api}/labels/type:%20bug", "name": "type: bug",
                        "color": "d73a4a", "default": True, "description": "Something isn't working"}],
            "state": "open", "locked": False, "assignee": None, "assignees": [], "milestone": None,
            "comments": 0, "created_at": "2024-01-10T10:00:00Z", "updated_at": "2024-01-10T10:00:00Z",
            "closed_at": None, "author_association": "NONE", "active_lock_reason": None, "body": BODY,
            "reactions": {"url": f"{api}/issues/{NUMBER}/reactions", "total_count": 0},
            "timeline_url": f"{api}/issues/{NUMBER}/timeline", "performed_via_github_app": None,
            "state_reason": None,
        },
        "repository": {"id": 56206424, "node_id": "MDEwOlJlcG9zaXRvcnk1NjIwNjQyNA==", "name": "web-bugs",
                       "full_name": REPO, "private": False, "owner": user("webcompat", 1),
                       "html_url": f"https://github.com/{REPO}", "url": api},
        "sender": reporter,
    }


@pytest.fixture(scope="module")
def envelope() -> EventEnvelope:
    """The delivery parsed by ingest and committed to the log, as the relay publishes it."""
    body = json.dumps(opened_payload()).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "issues",
               "X-GitHub-Delivery": "0b7c6f20-aa01-11ee-8c5b-1d6f0d1e8a11", "X-GitHub-Hook-ID": "1",
               "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    d = parse(headers, body, [SECRET])
    logged = EventEnvelope(position=1, delivery_id=d.delivery_id, event=d.event, action=d.action, repo=d.repo,
                           issue_number=d.issue_number, sender=d.sender,
                           received_at="2024-01-10T10:00:01+00:00", payload=json.loads(d.payload_text))
    return decode(encode(logged), EventEnvelope)


def served(envelope: EventEnvelope, task: str):
    """Serving: the dispatcher's task message, through the broker's bytes, as the predictor reads it."""
    messages = {m.task: m for m in route(load_rules(), envelope)}
    return decode(encode(messages[task]), TaskMessage).issue


def trained(envelope: EventEnvelope, task, tmp_path):
    """Training: the event log's histories, the task's label rule, the data set file, read back."""
    examples, report = build(task, histories_from_log([envelope]))
    assert report.examples == 1
    path = tmp_path / f"{task.name}.jsonl"
    write_dataset(path, examples)
    issues, labels = read_labelled(path)
    return issues[0], labels[0]


@pytest.mark.parametrize("name, label", [("needsdiagnosis", "not-needsdiagnosis"), ("issuetype", "bug")])
def test_serving_and_training_give_the_model_the_same_input(envelope, tmp_path, name, label):
    task = get_task(name)
    live = served(envelope, name)
    offline, got_label = trained(envelope, task, tmp_path)
    assert got_label == label
    assert task.text(live) == task.text(offline)
    assert "items are misaligned" in task.text(live)
    fields = ("repo", "number", "url", "author")
    assert [getattr(live, f) for f in fields] == [getattr(offline, f) for f in fields] == [
        REPO, NUMBER, f"https://github.com/{REPO}/issues/{NUMBER}", "bug-hunter-42"]
    assert live.labels == ("browser-firefox", "type: bug")


def test_an_issue_without_html_url_or_repo_gets_the_same_fallbacks_everywhere():
    issue = {"number": 7, "title": "t", "body": None, "user": {"login": "a"},
             "repository_url": "https://api.github.com/repos/acme/app", "labels": [{"name": "bug"}, "p1"]}
    snapshot = snapshot_of_issue(issue)
    assert (snapshot.repo, snapshot.url, snapshot.body, snapshot.labels) == (
        "acme/app", "https://github.com/acme/app/issues/7", "", ("bug", "p1"))
    assert snapshot_of_issue(issue, "other/repo").url == "https://github.com/other/repo/issues/7"
    assert snapshot_of_issue(issue, title="as reported").title == "as reported"
    record = snapshot_of_record({"repo": "acme/app", "number": "7", "title": "t", "author": "a"})
    assert (record.repo, record.number, record.url, record.author) == (snapshot.repo, 7, snapshot.url, "a")
    csv_row = snapshot_of_record({"repo": "acme/app", "created_at": "2024", "label": "bug", "title": "t",
                                  "body": "b"}, number=12)
    assert (csv_row.number, csv_row.url, csv_row.author) == (12, issue_url("acme/app", 12), None)
    assert issue_url("", 12) == ""


@pytest.mark.parametrize("issue", [None, [], {"title": "no number"}, {"number": "7"}, {"number": True}])
def test_no_usable_issue_is_refused_with_one_error(issue):
    with pytest.raises(NotAnIssueError):
        snapshot_of_issue(issue)


def test_the_dispatcher_rejects_it_as_before():
    e = EventEnvelope(position=1, delivery_id="d1", event="issues", action="opened", repo="a/b",
                      issue_number=None, sender="x", received_at="2024-01-01T00:00:00Z",
                      payload={"issue": {"title": "no number"}})
    with pytest.raises(NotAnIssueEvent, match=r"^issues\.opened delivery d1 has no issue object$"):
        route(load_rules(), e)
    with pytest.raises(NotAnIssueError):
        snapshot_of_record({"repo": "a/b", "title": "no number"})


def test_a_lone_surrogate_reaches_a_snapshot_as_the_replacement_character():
    """One rule for serving and training: text no codec can encode is read as U+FFFD, pairs are kept."""
    issue = {"number": 3, "title": "a\ud800b", "body": "\udfff\U0001F600", "user": {"login": "x\udbff"},
             "labels": [{"name": "bug\udc00"}]}
    served = snapshot_of_issue(issue, "o/r")
    trained = snapshot_of_record({"repo": "o/r", "number": 3, "title": "a\ud800b", "body": "\udfff\U0001F600",
                                  "author": "x\udbff"})
    assert (served.title, served.body, served.author, served.labels) == (
        "a\ufffdb", "\ufffd\U0001F600", "x\ufffd", ("bug\ufffd",))
    assert (trained.title, trained.body, trained.author) == (served.title, served.body, served.author)
    assert encode(TaskMessage(task="t", delivery_id="d", position=1, event="issues", action="opened",
                              issue=served)).decode("utf-8")
    assert representable("plain") == "plain"
