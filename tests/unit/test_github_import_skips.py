"""No single issue stops an import: issues GitHub will not serve (deleted: 410, transferred: 404, 451,
a 5xx that outlasts its retries) are skipped whole, listed with GitHub's answer, tried again by the
next import; everything else is logged once, in order. Over real HTTP against the loopback fake."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.ingest.event_log import EventLog
from services.ingest.github.commands import import_history
from services.ingest.github.importer import Importer
from services.ingest.github.report import COMPLETE, SKIPPED
from services.ingest.github.state import ImportState
from shared.database import create_engine, migrate
from shared.github import GitHubClient, GitHubError
from tests.github_fake import EPOCH, TOKEN, FakeGitHub, SyntheticIssue, SyntheticRepo
from tests.unit.test_github_import import REPO, check, logged

DELETED, TRANSFERRED = [3, 402, 655, 1111], 888
SKIPS = sorted([(n, 410, "This issue was deleted") for n in DELETED] + [(TRANSFERRED, 404, "Not Found")])


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def run(engine, gh: FakeGitHub, **options):
    with GitHubClient(TOKEN, base_url=gh.url, server_backoff=0.01) as c:
        return Importer(EventLog(engine), c, ImportState(engine)).run(REPO, **options)


def skips(report) -> list[tuple[int, int, str]]:
    return [(s.number, s.status, s.message) for s in report.skipped]


def web_bugs() -> SyntheticRepo:
    """1,200 list entries: 1,140 issues and 60 pull requests (some with events of their own), 4 of the
    issues deleted and 1 transferred."""
    repo = SyntheticRepo(issues=1140, pr_every=20)  # #1 to #1199, every 20th a pull request
    repo.issues[1200] = SyntheticIssue(1200, EPOCH + timedelta(hours=1200), "Update deps", "carol",
                                       pull_request=True, updated=EPOCH + timedelta(hours=1200))
    assert len(repo.issues) == 1200 and sum(i.pull_request for i in repo.issues.values()) == 60
    for number in (20, 400, 1200):  # pull requests' events: never read, never logged
        repo.add_event(number, "labeled", "alice", label={"name": "type-bug", "color": "e11d21"})
        repo.add_event(number, "closed", "bob")
    for number in DELETED:
        repo.delete(number)
    repo.transfer(TRANSFERRED)
    return repo


def test_deleted_and_transferred_issues_are_skipped_and_the_import_goes_on(engine):
    repo = web_bugs()
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        report = run(engine, gh)
        assert report.done and report.status == SKIPPED and skips(report) == SKIPS
        assert report.issues == 1140 and report.pull_requests == 60 and report.retried == 0
        check(engine, repo)  # every readable issue's events once, in order; nothing of the five
        assert not [p for _, p, _ in gh.log if any(f"/issues/{n}/events" in p for n in (20, 400, 1200))]
        assert report.appended == len(repo.expected_deliveries())

        # again: nothing added; the five are asked for again (one request each) and still skipped
        first = logged(engine)
        mark = len(gh.log)
        again = run(engine, gh)
        statuses = gh.statuses()[mark:]
        assert again.done and again.status == SKIPPED and again.appended == 0 and again.retried == 5
        assert skips(again) == SKIPS and {s.attempts for s in again.skipped} == {2}
        assert statuses == [200] + [304] * 12 + [410, 410, 410, 404, 410]  # by number
        assert logged(engine) == first

        # one comes back: its whole history is appended (after everything), the other four stay
        repo.readable(402)
        third = run(engine, gh)
        assert third.recovered == [402] and skips(third) == [s for s in SKIPS if s[0] != 402]
        assert logged(engine) == first + [e for e in repo.expected_deliveries() if e[0] == 402]
        assert third.appended == len([e for e in repo.expected_deliveries() if e[0] == 402])


def test_an_import_interrupted_three_times_adds_the_same_set(engine, tmp_path):
    repo = web_bugs()
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        for after, resume in ((150, False), (400, True), (300, True)):
            gh.drop_request(after=after)
            with pytest.raises(GitHubError, match="RemoteProtocolError"):
                run(engine, gh, resume=resume)
        report = run(engine, gh, resume=True)
        whole_url = f"sqlite:///{tmp_path}/whole.db"
        migrate(whole_url)
        whole = create_engine(whole_url)
        try:
            assert skips(run(whole, gh)) == SKIPS
            assert logged(engine) == logged(whole)
        finally:
            whole.dispose()
    assert report.done and report.status == SKIPPED and skips(report) == SKIPS
    assert report.retried == 0 and {s.attempts for s in report.skipped} == {1}  # met once, by its page
    check(engine, repo)


def test_a_5xx_that_outlasts_its_retries_skips_the_issue_whole(engine):
    """#7 has 3 pages of events; the second answers 502 however often it is asked: none of #7 is
    logged, not even its opening, and the next import reads it whole."""
    repo = SyntheticRepo(issues=40, pr_every=0)
    repo.refuse(7, 502, "Server Error", from_page=2)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        report = run(engine, gh)
        assert gh.statuses("/issues/7/events") == [200] + [502] * 4  # asked, then 3 retries with backoff
        assert len(report.waits) == 3
        assert report.status == SKIPPED and skips(report) == [(7, 502, "Server Error")]
        assert 7 not in {number for number, _ in logged(engine)}
        check(engine, repo)
        repo.readable(7)
        again = run(engine, gh)
    assert again.status == COMPLETE and again.recovered == [7] and again.skipped == []
    assert [e for e in logged(engine) if e[0] == 7] == [e for e in repo.expected_deliveries() if e[0] == 7]


def test_a_451_is_listed_in_text_and_json_and_the_exit_status_says_so(engine, capsys):
    repo = SyntheticRepo(issues=30)
    repo.refuse(12, 451, "Unavailable For Legal Reasons")
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        options = {"token": TOKEN, "base_url": gh.url, "quiet": True, "api": "rest"}
        assert import_history(engine, REPO, as_json=True, **options) == SKIPPED == 3
        check(engine, repo)
        first = logged(engine)
        said = json.loads(capsys.readouterr().out)
        assert (said["outcome"], said["exit_status"]) == ("complete with skipped issues", 3)
        assert [(s["number"], s["status"], s["message"]) for s in said["skipped"]] == [
            (12, 451, "Unavailable For Legal Reasons")]
        assert import_history(engine, REPO, **options) == 3
        *_, last = capsys.readouterr().out.splitlines()
        assert last == f"skipped {REPO}#12: 451 Unavailable For Legal Reasons (2 attempts)"
        repo.readable(12)
        assert import_history(engine, REPO, **options) == COMPLETE == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert line.endswith("skipped before now read; complete")
    assert logged(engine) == first + [e for e in repo.expected_deliveries() if e[0] == 12]


@pytest.mark.parametrize("status", [401, 403, 422])
def test_a_refusal_that_is_not_one_issues_still_stops_the_import(engine, status):
    repo = SyntheticRepo(issues=30)
    repo.refuse(12, status, "Resource not accessible by personal access token")
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        with pytest.raises(GitHubError) as caught:
            run(engine, gh)
    assert caught.value.status == status and "\n" not in str(caught.value)
    assert ImportState(engine).skips(REPO) == []


def test_an_issue_imported_by_number_is_no_longer_skipped(engine):
    repo = SyntheticRepo(issues=30)
    repo.delete(12)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        assert skips(run(engine, gh)) == [(12, 410, "This issue was deleted")]
        repo.readable(12)
        with GitHubClient(TOKEN, base_url=gh.url) as c:
            now = Importer(EventLog(engine), c, ImportState(engine)).run_issues(REPO, [12])
    assert now.recovered == [12] and ImportState(engine).skips(REPO) == []
    assert [e for e in logged(engine) if e[0] == 12] == [e for e in repo.expected_deliveries() if e[0] == 12]


def test_the_command_line_says_it_in_its_exit_status(tmp_path, monkeypatch, capsys):
    """`wcml github import OWNER/REPO --api rest --json`, as a script runs it: 3, then 0 once GitHub
    serves all (GraphQL does not list a transferred issue: nothing to skip)."""
    from services import cli

    repo = SyntheticRepo(issues=30)
    repo.transfer(12)
    for name, value in (("WCML_DATABASE_URL", f"sqlite:///{tmp_path}/wcml.db"), ("GITHUB_TOKEN", TOKEN)):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli.wcml_log, "setup", lambda *_: None)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        assert cli.main(["github", "import", REPO, "--api", "rest", "--json", "--quiet"]) == 3
        said = json.loads(capsys.readouterr().out)
        assert said["skipped"][0] | {"first_at": None, "tried_at": None} == {
            "number": 12, "status": 404, "message": "Not Found", "attempts": 1, "first_at": None,
            "tried_at": None}
        repo.readable(12)
        assert cli.main(["github", "import", REPO, "--api", "rest", "--json", "--quiet"]) == 0
        said = json.loads(capsys.readouterr().out)
    assert (said["outcome"], said["recovered"], said["skipped"]) == ("complete", [12], [])
