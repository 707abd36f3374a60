"""The import's skipped issues as PostgreSQL and SQLite keep them: recorded with GitHub's answer, one
more attempt each time, forgotten once read whole; a run asks again only for those tried before it
began (a resumed run's earlier parts count as the run)."""

from __future__ import annotations

import time

import pytest

from services.ingest.event_log import EventLog
from services.ingest.github.importer import Importer
from services.ingest.github.state import ImportState, Skip
from shared.database import create_engine, migrate
from shared.github import GitHubClient, GitHubError
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo

REPO = "webcompat/web-bugs"


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/s.db"
    migrate(url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_skips_are_recorded_counted_and_forgotten(engine):
    state = ImportState(engine)
    state.settle_skips(REPO, [Skip(402, 410, "This issue was deleted"), Skip(888, 404, "Not Found")])
    state.settle_skips("other/repo", [Skip(402, 451, "Unavailable For Legal Reasons")])
    time.sleep(0.01)
    run = state.start(REPO, "", "https://api.github.com/x")
    state.settle_skips(REPO, [Skip(888, 502, "Bad Gateway")])
    assert [(s.number, s.status, s.message, s.attempts) for s in state.skips(REPO)] == [
        (402, 410, "This issue was deleted", 1), (888, 502, "Bad Gateway", 2)]
    assert [s.number for s in state.skips(REPO, tried_before=run.started_at)] == [402]
    assert state.get(REPO, "").started_at == run.started_at
    state.settle_skips(REPO, [], read=[402, 888, 5])
    assert state.skips(REPO) == [] and [s.number for s in state.skips("other/repo")] == [402]


def test_a_resumed_run_asks_again_only_for_what_was_skipped_before_it_began(engine):
    repo = SyntheticRepo(issues=250)
    for number in (3, 150):
        repo.delete(number)
    with FakeGitHub() as gh, GitHubClient(TOKEN, base_url=gh.url) as client:
        gh.add_repo(repo)
        importer = Importer(EventLog(engine), client, ImportState(engine))
        assert [s.number for s in importer.run(REPO).skipped] == [3, 150]
        # a fresh run: page 1 changed (#3 is met there again), pages 2 and 3 are 304s, and the
        # connection drops as it asks again for #150, skipped before the run began
        repo.add_event(5, "labeled", "alice", label={"name": "type-bug", "color": "e11d21"})
        page_1 = sum(1 + len(i.events) // 100 for i in repo.listed(None)[:100] if not i.pull_request)
        gh.drop_request(after=1 + 1 + page_1 + 2 + 1)
        with pytest.raises(GitHubError, match="RemoteProtocolError"):
            importer.run(REPO)
        assert gh.log[-1][1:] == (f"/repos/{REPO}/issues/150/events?per_page=100", 0)
        assert ImportState(engine).get(REPO, "").state == "running"
        mark = len(gh.log)
        report = importer.run(REPO, resume=True)
        assert gh.log[mark + 1][1:] == (f"/repos/{REPO}/issues/150/events?per_page=100", 410)
    assert report.done and report.retried == 1 and ImportState(engine).get(REPO, "").state == "done"
    assert [(s.number, s.attempts) for s in report.skipped] == [(3, 2), (150, 2)]
