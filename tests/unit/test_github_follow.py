"""The follower over real HTTP on loopback (tests/github_fake.py) into a SQLite event log: a repository
changing over ten simulated minutes, half its changes told by webhooks first, followed in ticks; then
every change is in the log exactly once, an unchanged repository costs no rate limit, and a follow
after a full import adds nothing. ``wcml github follow`` stops on SIGTERM within seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.api import dashboard, follow_view
from services.ingest.event_log import EventLog, event_log
from services.ingest.github import history
from services.ingest.github.follow import Follower, moved
from services.ingest.github.follow_reports import report_of
from services.ingest.github.follow_state import FollowState
from services.ingest.github.importer import Importer
from services.ingest.github.state import ImportState
from services.ingest.webhook import WebhookDelivery
from shared.broker.port import Delivery
from shared.github import GitHubClient
from shared.messages import STATE_EXCHANGE, encode
from tests.github_fake import LABELS, TOKEN, FakeGitHub, SyntheticRepo, _user
from tests.waiting import eventually

REPO = "webcompat/web-bugs"
START = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)  # after every synthetic issue's history


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def minute(n: int) -> datetime:
    return START + timedelta(minutes=n)


def webhook(engine, repo: SyntheticRepo, action: str, number: int, actor: str, **extra) -> None:
    """A webhook as ingest logs it: GitHub's ``issues`` payload with the issue as it is now (its
    ``updated_at`` the change's time), ``source='live'``, a GUID for a delivery id."""
    payload = {"action": action, "issue": repo.issue_json(repo.issues[number]),
               "repository": repo.repository(), "sender": _user(actor), **extra}
    EventLog(engine).append(WebhookDelivery(
        delivery_id=str(uuid.uuid4()), hook_id="1", event="issues", action=action, repo=repo.full_name,
        issue_number=number, sender=actor, payload_text=json.dumps(payload)))


def rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(event_log.c.source, event_log.c.action, event_log.c.issue_number,
                                      event_log.c.event_key, event_log.c.payload)
                            .where(event_log.c.event == "issues").order_by(event_log.c.position)).all()


def logged_keys(engine) -> Counter:
    """Every logged entry's identity: an import's event key; a webhook's, the key its event has
    through the API (``history.webhook_keys``, counted per issue in log order)."""
    keys: Counter = Counter()
    live: dict[int, list[dict]] = {}
    for source, action, number, key, payload in rows(engine):
        if source == "import":
            keys[key] += 1
        elif action == "deleted":
            keys[history.deleted_key(json.loads(payload)["issue"]["id"])] += 1
        else:
            live.setdefault(number, []).append(json.loads(payload))
    for payloads in live.values():
        for key in history.webhook_keys(payloads):
            assert key is not None
            keys[key] += 1
    return keys


def expected_keys(repo: SyntheticRepo) -> Counter:
    """The key of every change GitHub holds of the issues (pull requests left out), and a deletion's."""
    keys: Counter = Counter()
    for issue in repo.issues.values():
        if issue.pull_request:
            continue
        issue_id = 500_000 + issue.number
        keys[history.opened_key(issue_id)] += 1
        keys.update(history.event_keys(issue_id, history.importable(issue.events)))
        if issue.number in repo.removed:
            keys[history.deleted_key(issue_id)] += 1
    return keys


def change(action: str, number: int, payload: dict) -> tuple[str, int, str]:
    """What a logged entry changed: action, issue, subject."""
    subject = ((payload.get("label") or {}).get("name") or (payload.get("milestone") or {}).get("title")
               or (payload.get("assignee") or {}).get("login")
               or ((payload.get("changes") or {}).get("title") or {}).get("from") or "")
    return action, number, subject


def free_label(repo: SyntheticRepo, number: int) -> dict:
    name, color = next(lb for lb in LABELS if lb[0] not in repo.issues[number].labels)
    return {"name": name, "color": color}


def test_ticks_log_every_change_once_beside_webhooks(engine):
    repo = SyntheticRepo(issues=40, events_per_issue=2, pr_every=10, long_history=3)
    with FakeGitHub() as gh, GitHubClient(TOKEN, base_url=gh.url) as client:
        gh.add_repo(repo)
        follower = Follower(engine, client, sweep=10)
        first = follower.tick(REPO)  # no cursor yet: the whole repository
        assert first.appended == len(repo.expected_deliveries()) and first.webhooks == 0
        changes = []  # (action, issue, subject) of each change made below

        a = repo.open_issue("video.example - video does not play", "alice", minute(1))
        webhook(engine, repo, "opened", a.number, "alice")
        changes.append(("opened", a.number, ""))
        bug = {"name": "type-bug", "color": "e11d21"}
        repo.add_event(a.number, "labeled", "bob", minute(2), label=bug)  # no webhook came
        changes.append(("labeled", a.number, "type-bug"))
        b = repo.open_issue("layout.example - layout is broken", "carol", minute(3))
        changes.append(("opened", b.number, ""))
        follower.tick(REPO)

        old = b.title
        repo.add_event(b.number, "renamed", "dave", minute(4),
                       rename={"from": old, "to": old + " in Firefox"})
        webhook(engine, repo, "edited", b.number, "dave", changes={"title": {"from": old}})
        changes.append(("edited", b.number, old))
        label = free_label(repo, 3)
        repo.add_event(3, "labeled", "alice", minute(5), label=label)
        webhook(engine, repo, "labeled", 3, "alice", label=label)
        changes.append(("labeled", 3, label["name"]))
        repo.add_event(4, "milestoned", "bob", minute(6), milestone={"title": "sitewait"})
        changes.append(("milestoned", 4, "sitewait"))
        follower.tick(REPO)

        repo.add_event(a.number, "closed", "alice", minute(7))
        webhook(engine, repo, "closed", a.number, "alice")
        changes.append(("closed", a.number, ""))
        repo.add_event(b.number, "assigned", "bob", minute(8), assignee=_user("carol"))
        changes.append(("assigned", b.number, "carol"))
        repo.edit(6, minute(8))  # a body edit: listed as changed, no event
        webhook(engine, repo, "deleted", 9, "webcompat-bot")  # deleted, and the webhook said so
        repo.remove(9)
        changes.append(("deleted", 9, ""))
        repo.remove(11)  # deleted, and no webhook said so: the sweep finds it
        changes.append(("deleted", 11, ""))
        repo.add_event(a.number, "reopened", "carol", minute(10))
        webhook(engine, repo, "reopened", a.number, "carol")
        changes.append(("reopened", a.number, ""))
        ticks = [follower.tick(REPO) for _ in range(5)]  # the sweep goes round the issues, 10 a tick

        got = logged_keys(engine)
        assert {k: n for k, n in got.items() if n > 1} == {}  # none twice
        assert got == expected_keys(repo)  # every change, and nothing else
        logged_changes = Counter(change(action, number, json.loads(payload))
                                 for _, action, number, _, payload in rows(engine))
        assert {c: logged_changes[c] for c in changes} == {c: 1 for c in changes}
        assert sum(t.deleted for t in ticks) == 1 and sum(t.webhooks for t in ticks) > 0

        follower.tick(REPO)
        spent = gh.rate.remaining
        quiet = follower.tick(REPO)  # nothing changed: every answer a 304
        assert (quiet.appended, quiet.issues) == (0, 0)
        assert quiet.requests == quiet.not_modified > 0 and gh.rate.remaining == spent
    followed = FollowState(engine).get(REPO)
    assert followed.cursor == moved(None, "2024-06-01T09:10:00Z") and followed.ticks == 10
    assert followed.appended == sum(1 for r in rows(engine) if r.source == "import")


def test_a_follow_after_a_full_import_adds_nothing(engine):
    repo = SyntheticRepo(issues=250, events_per_issue=3)
    with FakeGitHub() as gh, GitHubClient(TOKEN, base_url=gh.url) as client:
        gh.add_repo(repo)
        Importer(EventLog(engine), client, ImportState(engine)).run(REPO)
        logged = len(rows(engine))
        tick = Follower(engine, client).tick(REPO)
    assert tick.appended == 0 and len(rows(engine)) == logged
    assert tick.issues == 250  # each once, though a page's last change starts the next page
    pages = -(-len(repo.issues) // 100)
    assert tick.requests - tick.not_modified == 1 + pages  # the repository, the listing; events all 304


def test_an_issue_changed_while_the_changes_are_listed_hides_none_of_the_others(engine):
    """150 issues changed since the last tick, two pages of them; while the first page is read, one of
    its issues changes again and moves to the end of the list. By GitHub's page numbers the issue
    after the first page would slip onto page 1, already read, and the cursor pass it for good."""
    repo = SyntheticRepo(issues=160, events_per_issue=1, pr_every=1000)  # no pull request among them
    with FakeGitHub() as gh, GitHubClient(TOKEN, base_url=gh.url) as client:
        gh.add_repo(repo)
        follower = Follower(engine, client, sweep=0)
        follower.tick(REPO)
        label = {"name": "type-bug", "color": "e11d21"}
        for n in range(1, 151):
            repo.add_event(n, "labeled", "alice", START + timedelta(seconds=10 * n), label=label)
        listings = []

        def change_one_already_listed(target: str) -> None:
            if "sort=updated" in target:
                listings.append(target)
                if len(listings) == 2:  # page 1 is read: issue 5 changes, to the end of the list
                    repo.add_event(5, "unlabeled", "bob", START + timedelta(hours=1), label=label)

        gh.before_answer = change_one_already_listed
        follower.tick(REPO)
        gh.before_answer = None
    got = logged_keys(engine)
    assert {k: n for k, n in got.items() if n > 1} == {}  # none twice
    assert got == expected_keys(repo)  # none hidden: the 150 labels and issue 5's change again


def test_the_cursor_keeps_an_overlap_and_never_goes_back():
    assert moved(None, "2024-06-01T09:10:00Z") == "2024-06-01T09:09:55Z"
    assert moved("2024-06-01T09:09:55Z", "2024-06-01T09:10:02Z") == "2024-06-01T09:09:57Z"
    assert moved("2024-06-01T09:09:55Z", "2024-06-01T09:09:58Z") == "2024-06-01T09:09:55Z"
    assert moved("2024-06-01T09:09:55Z", None) == "2024-06-01T09:09:55Z"


def test_wcml_github_follow_stops_on_sigterm_within_5_seconds(tmp_path):
    with FakeGitHub() as gh:
        gh.add_repo(SyntheticRepo(issues=20, events_per_issue=2, long_history=3))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "GITHUB_"))}
        env.update(WCML_DATABASE_URL=f"sqlite:///{tmp_path}/wcml.db", GITHUB_TOKEN=TOKEN,
                   GITHUB_API_URL=gh.url, PYTHONUNBUFFERED="1")
        out = tmp_path / "follow.log"
        with out.open("wb") as log:
            follow = subprocess.Popen([sys.executable, "-m", "services.cli", "github", "follow", REPO,
                                       "--every", "60"], cwd=tmp_path, env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
            try:
                eventually(lambda: f"follow {REPO}: " in out.read_text(), timeout=60,
                           message=lambda: f"a first tick: {out.read_text()}")
                sent = time.monotonic()
                follow.send_signal(signal.SIGTERM)
                status = follow.wait(5)
                took = time.monotonic() - sent
            finally:
                if follow.poll() is None:
                    follow.kill()
                    follow.wait()
    assert status == 0 and took < 5, out.read_text()
    assert "20 changed issue(s)" in out.read_text()


def test_the_dashboard_shows_the_lag_the_followers_reports_say(engine):
    """The follower's place goes to the API as a report (wcml.state); the newest of each repository is
    kept, a late one rolls nothing back, and the dashboard shows the lag."""
    repo = SyntheticRepo(issues=5, events_per_issue=1, long_history=1)
    with FakeGitHub() as gh, GitHubClient(TOKEN, base_url=gh.url) as client:
        gh.add_repo(repo)
        follower = Follower(engine, client)
        follower.tick(REPO)
        first = report_of(FollowState(engine).get(REPO))
        follower.tick(REPO)
        second = report_of(FollowState(engine).get(REPO))
    assert (first.ticks, second.ticks) == (1, 2) and first.appended == second.appended > 0

    def delivered(report) -> Delivery:
        return Delivery(encode(report), report.kind, STATE_EXCHANGE, {}, False, 0)

    assert follow_view.handle(engine, [delivered(second)]) == []
    assert follow_view.handle(engine, [delivered(first)]) == []  # late: kept out
    later = FollowState(engine).get(REPO).synced_at + timedelta(seconds=90)
    (shown,) = follow_view.list_follows(engine, later)
    assert (shown["repo"], shown["ticks"]) == (REPO, 2) and 89 <= shown["lag_seconds"] <= 91
    from services.api.routes import api_blueprint
    from shared.http import app_for
    from shared.known import Known

    app = app_for("t", [api_blueprint(engine, ("k",), lambda request: None, Known.read(None, None))],
                  lambda: None)
    with app.test_request_context("/"):
        html, status = dashboard.render(engine, {}, now=later)
    assert status == 200 and 'id="follows"' in html and REPO in html and "90 s" in html
