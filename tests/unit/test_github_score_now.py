"""Score an issue now through the API: POST …/score is a message to ingest, which fetches the issue and
its events from GitHub (a fake on loopback) into the log as imported history."""

from __future__ import annotations

import pytest

from services.ingest.github.score_requests import ScoreRequests
from shared import topology
from shared.broker.memory import MemoryBroker
from tests.builders import AUTH, api_app
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo
from tests.unit.test_github_import import REPO, logged


@pytest.fixture
def broker():
    broker = MemoryBroker()
    topology.declare(broker)
    return broker


def test_an_issue_asked_for_is_logged_with_its_events_once(sqlite_engine, broker):
    repo = SyntheticRepo(issues=30, pr_every=10)
    client = api_app(sqlite_engine, broker=broker).test_client()
    for _ in range(2):  # asked twice: logged once
        answer = client.post(f"/api/v1/issues/{REPO}/7/score", headers=AUTH)
        assert answer.status_code == 202
        assert answer.get_json()["predictions"] == f"/api/v1/issues/{REPO}/7"
    requests = broker.get(topology.SCORES_QUEUE.name, 10)
    assert len(requests) == 2
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        assert ScoreRequests(sqlite_engine, TOKEN, gh.url).handle(requests) == []
    assert logged(sqlite_engine) == [e for e in repo.expected_deliveries() if e[0] == 7]


def test_a_missing_issue_or_a_pull_request_is_dead_lettered_with_githubs_answer(sqlite_engine, broker):
    client = api_app(sqlite_engine, broker=broker).test_client()
    for number in (999, 10, 3):  # no such issue, a pull request, an issue
        assert client.post(f"/api/v1/issues/{REPO}/{number}/score", headers=AUTH).status_code == 202
    with FakeGitHub() as gh:
        gh.add_repo(SyntheticRepo(issues=30, pr_every=10))
        requests = broker.get(topology.SCORES_QUEUE.name, 10)
        rejections = ScoreRequests(sqlite_engine, TOKEN, gh.url).handle(requests)
    assert [r.reason for r in rejections] == [
        f"{REPO}#999 was not found on GitHub (404: Not Found): check the name, or give a token that can "
        "see it",
        f"{REPO}#10 is a pull request: only issues are scored"]
    assert {number for number, _ in logged(sqlite_engine)} == {3}


@pytest.mark.parametrize("path", ["webcompat/web bugs/1", "webcompat/../1", "webcompat/web-bugs/0"])
def test_an_issue_that_cannot_exist_is_a_404(sqlite_engine, broker, path):
    answer = api_app(sqlite_engine, broker=broker).test_client().post(f"/api/v1/issues/{path}/score",
                                                                        headers=AUTH)
    assert answer.status_code == 404 and broker.queue_depth(topology.SCORES_QUEUE.name) == 0
