"""The history import, counted: a synthetic repository (3,000 issues, about 15,000 events, 32 pages)
served over real HTTP on loopback, into a SQLite event log. Interruptions, resumes, re-imports and
rate limits, then one log event per GitHub event, in order: lost = 0, duplicated = 0."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from services.ingest.event_log import EventLog, LogFilter, event_log
from services.ingest.github.commands import import_history
from services.ingest.github.importer import Importer
from services.ingest.github.state import ImportState
from shared.github import GitHubClient, GitHubError
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo

REPO = "webcompat/web-bugs"


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def logged(engine) -> list[tuple[int, str]]:
    """(issue number, GitHub event id or ``opened``) of every log row, in position order. An event
    imported through GraphQL has no REST id; the fake's node ids are ``E_<REST id>``, so it is read
    from there."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(event_log.c.issue_number, event_log.c.payload, event_log.c.source,
                                      event_log.c.delivery_id).order_by(event_log.c.position)).all()
    out = []
    for number, payload, source, delivery in rows:
        assert source == "import" and delivery.startswith("import-")
        imported = json.loads(payload)["imported"]
        event_id = imported["event_id"] or (imported["node_id"] or "").removeprefix("E_") or None
        out.append((number, "opened" if imported["event"] == "opened" else str(event_id)))
    return out


def check(engine, repo: SyntheticRepo) -> None:
    """Exactly the expected events, each once, in order (issues oldest first, each issue's events
    as they happened)."""
    got, expected = logged(engine), repo.expected_deliveries()
    doubled = [k for k, n in Counter(got).items() if n > 1]
    lost = set(expected) - set(got)
    assert (len(lost), len(doubled)) == (0, 0), f"lost {sorted(lost)[:5]}, duplicated {doubled[:5]}"
    assert got == expected


def run(engine, gh: FakeGitHub, said: list[str] | None = None, **options):
    with GitHubClient(TOKEN, base_url=gh.url, on_wait=(said.append if said is not None else None)) as c:
        return Importer(EventLog(engine), c, ImportState(engine)).run(REPO, **options)


def test_interrupted_twice_resumed_then_imported_again(engine):
    repo = SyntheticRepo(issues=3000)
    expected = repo.expected_deliveries()
    assert 14_000 <= len(expected) <= 16_000
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        gh.drop_request(after=700)  # mid-page 8: the connection closes without an answer
        with pytest.raises(GitHubError, match="RemoteProtocolError"):
            run(engine, gh)
        cursor = ImportState(engine).get(REPO, "")
        assert cursor.state == "running" and cursor.pages == 7 and cursor.next_url.endswith("page=8")
        assert cursor.issues == 7 * 95 and len(logged(engine)) == cursor.events
        gh.drop_request(after=1200)
        with pytest.raises(GitHubError, match="RemoteProtocolError"):
            run(engine, gh, resume=True)
        second = ImportState(engine).get(REPO, "")
        assert second.pages > cursor.pages and second.state == "running"
        report = run(engine, gh, resume=True)
        assert report.done and ImportState(engine).get(REPO, "").state == "done"
        check(engine, repo)
        assert report.duplicates == 0  # each interruption came before its page was appended
        assert report.pull_requests > 0

        # a second full import: every page of issues is a 304, nothing is read beyond them
        mark = len(gh.log)
        budget = gh.rate.remaining
        again = run(engine, gh)
        pages = gh.statuses()[mark:]
        assert again.done and again.appended == 0 and again.issues == 0
        assert pages[0] == 200 and set(pages[1:]) == {304} and len(pages) == 1 + 32  # repository + pages
        assert gh.rate.remaining == budget - 1  # only the repository cost a request
        check(engine, repo)

        # something happens on GitHub: one page changes, one issue's events are read, one event added
        before = sum(1 for number, _ in expected if number == 105)
        new = repo.add_event(105, "labeled", "alice", label={"name": "type-bug", "color": "e11d21"})
        mark = len(gh.log)
        third = run(engine, gh)
        statuses = Counter(gh.statuses()[mark:])
        # the issue's history is derived again (to rebuild the issue at each event): its old events
        # come back as known delivery ids
        assert third.appended == 1 and third.duplicates == before
        assert statuses[200] == 1 + 1 + 1  # repository, the changed page, issue 105's events
        assert logged(engine) == expected + [(105, str(new["id"]))]  # after everything it followed


def test_a_stop_between_appending_a_page_and_moving_the_cursor_doubles_nothing(engine, monkeypatch):
    repo = SyntheticRepo(issues=250)
    save = ImportState.save_validators
    calls = []

    def dies_on_the_second_page(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process stops: page 2 is in the log, the cursor still on it
        return save(self, *args, **kwargs)

    with FakeGitHub() as gh:
        gh.add_repo(repo)
        monkeypatch.setattr(ImportState, "save_validators", dies_on_the_second_page)
        with pytest.raises(KeyboardInterrupt):
            run(engine, gh)
        monkeypatch.setattr(ImportState, "save_validators", save)
        report = run(engine, gh, resume=True)
    assert report.done and report.duplicates > 0 and report.issues == 250 - 95
    check(engine, repo)


def test_a_spent_budget_mid_import_waits_for_the_reset_and_loses_nothing(engine):
    repo = SyntheticRepo(issues=150)
    said: list[str] = []
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        gh.exhaust_after(60, reset_in=1.5)
        start = time.time()
        report = run(engine, gh, said)
        (exhausted_at, reset), = gh.exhausted
        refused = [(t, s) for t, _, s in gh.log if s == 403]
        after = [t for t, _, s in gh.log if s == 200 and t > exhausted_at]
    assert report.done and len(refused) == 1
    assert min(after) >= reset  # no request was answered before the announced reset
    assert reset - start >= 1.5 and len(report.waits) == 1 and report.waits[0] >= reset - exhausted_at - 0.1
    assert said and "GitHub rate limit used up" in said[0] and "X-RateLimit-Reset" in said[0]
    check(engine, repo)


def test_a_budget_that_runs_out_is_waited_for_before_a_403(engine):
    """X-RateLimit-Remaining reaches 0 on an answer: the next request waits for the reset."""
    repo = SyntheticRepo(issues=60, pr_every=0)
    said: list[str] = []
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        gh.set_rate_limit(limit=40, window=2.0)
        report = run(engine, gh, said)
        statuses = gh.statuses()
    assert report.done and 403 not in statuses and len(statuses) == 1 + 1 + 60 + 2  # #7: 3 pages of events
    assert len(report.waits) >= 1 and all("GitHub rate limit used up (40 requests)" in s for s in said)
    check(engine, repo)


def test_secondary_limits_mid_import_are_waited_out(engine):
    repo = SyntheticRepo(issues=40)
    said: list[str] = []
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        gh.secondary_limit(after=10, status=429, retry_after=1)
        gh.secondary_limit(after=25, status=403, retry_after=1)
        report = run(engine, gh, said)
    assert report.done and report.waits == [1.0, 1.0] and len(said) == 2
    check(engine, repo)


def test_the_command_prints_one_summary_line(engine, capsys):
    repo = SyntheticRepo(issues=30)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        assert import_history(engine, REPO, token=TOKEN, base_url=gh.url, issues=12, quiet=True) == 1
        assert import_history(engine, REPO, token=TOKEN, base_url=gh.url, resume=True, quiet=True) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].endswith("(stopped early: continue with --resume)")
    assert out[1].startswith(f"{REPO}: ") and "already logged" in out[1]
    check(engine, repo)


def test_since_reads_only_issues_updated_since(engine):
    repo = SyntheticRepo(issues=50, pr_every=0)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        assert import_history(engine, REPO, token=TOKEN, base_url=gh.url, since="2020-01-02T13:00:00Z",
                              quiet=True) == 0
    numbers = {number for number, _ in logged(engine)}
    assert numbers and all(repo.issues[n].updated.isoformat() >= "2020-01-02T13:00:00" for n in numbers)
    assert len(numbers) < 50


@pytest.mark.parametrize("token, repo_name, says", [
    ("wrong", REPO, "GitHub refused the token (401: Bad credentials): check GITHUB_TOKEN"),
    (TOKEN, "webcompat/nothing", "webcompat/nothing was not found on GitHub (404: Not Found)"),
])
def test_the_command_stops_with_one_line(engine, token, repo_name, says):
    with FakeGitHub() as gh:
        gh.add_repo(SyntheticRepo(issues=3))
        with pytest.raises(GitHubError) as caught:
            import_history(engine, repo_name, token=token, base_url=gh.url, quiet=True)
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)
    assert EventLog(engine).count(LogFilter()) == 0


def test_just_some_issues_are_imported_now_and_not_twice(engine, capsys):
    """`--issue N`: those issues with every event, as the full import would log them; again, nothing."""
    repo = SyntheticRepo(issues=40, pr_every=0)
    wanted = [7, 23]
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        assert import_history(engine, REPO, token=TOKEN, base_url=gh.url, numbers=wanted, quiet=True) == 0
        first = logged(engine)
        assert import_history(engine, REPO, token=TOKEN, base_url=gh.url, numbers=wanted, quiet=True) == 0
    assert first == [e for e in repo.expected_deliveries() if e[0] in wanted] and first
    assert logged(engine) == first
    assert "0 event(s) appended" in capsys.readouterr().out.splitlines()[-1]


def test_training_data_from_imported_events_is_what_the_export_gives(engine):
    """`wcml dataset build --from-log` over an imported repository: the same examples and labels as
    the same issues read straight from the API, whatever order the events were imported in, because
    each event keeps the time it happened on GitHub (not its import time)."""
    from services.predictor.tasks import TASKS
    from services.predictor.training.datasets import build, histories_from_log

    repo = SyntheticRepo(issues=200, pr_every=0, events_per_issue=6)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        run(engine, gh)
    exported = [(repo.issue_json(i) | {"repo": REPO}, i.events) for i in repo.issues.values()]

    def examples(built):  # label order aside (the API lists an issue's labels in its own order)
        return sorted((s.number, s.title, s.body, s.author, sorted(s.labels), label) for s, label in built[0])

    for task in ("needsdiagnosis", "issuetype"):
        logged_histories = histories_from_log(EventLog(engine).iterate(LogFilter(repo=REPO)))
        from_log = examples(build(TASKS[task], logged_histories))
        assert from_log == examples(build(TASKS[task], exported)) and from_log
