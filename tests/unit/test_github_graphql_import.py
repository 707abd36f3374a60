"""The history import through GraphQL (the default), against the fake's ``POST /graphql`` over real
HTTP on loopback: queries validated against GitHub's public schema, points charged by GitHub's rule.
The same repository through REST and through GraphQL logs the same event keys; either after the
other adds nothing; interruptions, spent budgets, secondary limits and 502s lose nothing."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from services.ingest.event_log import EventLog, event_log
from services.ingest.github.commands import import_history
from services.ingest.github.graphql import ISSUES, TIMELINE
from services.ingest.github.importer import Importer
from services.ingest.github.report import COMPLETE, SKIPPED
from services.ingest.github.state import ImportState
from shared.database import create_engine, migrate
from shared.errors import UserError
from shared.github import GitHubClient, GitHubError, GraphQLRefusal
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo
from tests.github_graphql_fake import TYPENAMES, github_schema, query_cost
from tests.unit.test_github_import import REPO, check, logged
from tests.unit.test_github_import_skips import SKIPS, skips, web_bugs


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


@pytest.fixture
def other(tmp_path):
    """A second event log, for the same repository imported another way."""
    url = f"sqlite:///{tmp_path}/other.db"
    migrate(url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def run(engine, gh: FakeGitHub, said: list[str] | None = None, *, api: str = "graphql", **options):
    with GitHubClient(TOKEN, base_url=gh.url, server_backoff=0.01,
                      on_wait=(said.append if said is not None else None)) as c:
        return Importer(EventLog(engine), c, ImportState(engine)).run(REPO, api=api, **options)


def delivery_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(event_log.c.delivery_id).order_by(event_log.c.position)).scalars())


def event_keys(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(event_log.c.event_key)).scalars())


def pages_of_timeline(repo: SyntheticRepo) -> int:
    """Further queries the issues with more than 100 timeline items need (1 point each)."""
    counts = [sum(1 for e in i.events if e["event"] in TYPENAMES) for i in repo.issues.values()
              if not i.pull_request and i.number not in repo.refused]
    return sum(max(0, -(-n // 100) - 1) for n in counts)


def test_the_query_is_what_github_charges_3_points_for_and_a_timeline_page_1():
    """GitHub's rule over our two queries: issues 1 + labels 100 + assignees 100 + timelineItems
    100 = 301 requests -> 3 points; a further timeline page: 1 request -> 1 point."""
    from graphql import parse, validate

    schema = github_schema()
    for query in (ISSUES, TIMELINE):
        assert validate(schema, parse(query)) == []
    issues = query_cost(schema, parse(ISSUES), {"owner": "webcompat", "name": "web-bugs"})
    assert (issues.requests, issues.points, issues.errors) == (301, 3, [])
    assert issues.nodes == 100 + 100 * 100 + 100 * 10 + 100 * 100
    timeline = query_cost(schema, parse(TIMELINE), {"id": "I_1"})
    assert (timeline.requests, timeline.points) == (1, 1)


def test_a_query_github_would_refuse_is_refused():
    with FakeGitHub() as gh, GitHubClient(TOKEN, base_url=gh.url) as c:
        with pytest.raises(GraphQLRefusal, match="Cannot query field 'eventId' on type 'LabeledEvent'"):
            c.graphql("{ node(id: \"x\") { ... on LabeledEvent { eventId } } }", what="a query")
        with pytest.raises(GraphQLRefusal, match=r"MISSING_PAGINATION_BOUNDARIES: You must provide"):
            c.graphql('{ repository(owner: "a", name: "b") { issues { totalCount } } }', what="a query")
        with pytest.raises(GraphQLRefusal, match="NOT_FOUND: Could not resolve to a Repository"):
            c.graphql('{ repository(owner: "a", name: "b") { issues(first: 1) { totalCount } } }', what="a")
    assert c.counters.points == 0 and c.counters.queries == 0  # no answer with data


def test_the_same_event_keys_as_the_rest_import_in_a_fraction_of_the_calls(engine, other):
    """1,200 list entries (60 pull requests, 4 deleted issues, 1 transferred): GraphQL lists 1,135
    issues in 12 queries of 3 points (and 1 point a further page of #7's 250 events); REST reads
    the same events in one request a page of issues plus one per issue's page of events."""
    repo = web_bugs()
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        through_graphql = run(engine, gh)
        charged = list(gh.graphql.charged)
        through_rest = run(other, gh, api="rest")
    assert delivery_ids(engine) == delivery_ids(other) and event_keys(engine) == event_keys(other)
    check(engine, repo)  # every readable issue's events once, in order
    assert through_graphql.status == COMPLETE and through_graphql.skipped == []  # none listed to skip
    assert through_rest.status == SKIPPED and skips(through_rest) == SKIPS
    assert through_graphql.appended == through_rest.appended == len(repo.expected_deliveries())
    assert through_graphql.issues == 1135 and through_graphql.pages == 12
    extra = pages_of_timeline(repo)
    assert extra >= 1 and charged == [3] * 1 + [1] * extra + [3] * 11  # #7 is on the first page
    assert through_graphql.points == sum(charged) == 36 + extra and through_graphql.queries == 12 + extra
    assert through_graphql.requests == 1 + 12 + extra  # the repository (REST), then the queries
    assert through_rest.requests > 1150 and through_rest.points == 0
    assert "GraphQL queries costing" in through_graphql.summary()
    assert f"{36 + extra} points" in through_graphql.summary()
    said = through_graphql.as_dict()
    assert (said["api"], said["points"], said["queries"]) == ("graphql", 36 + extra, 12 + extra)


def test_one_api_after_the_other_adds_nothing(engine, other):
    repo = web_bugs()
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        run(engine, gh, api="rest")
        graphql_after_rest = run(engine, gh)
        run(other, gh)
        rest_after_graphql = run(other, gh, api="rest")
    every = len(repo.expected_deliveries())
    assert graphql_after_rest.appended == 0 and graphql_after_rest.duplicates == every
    assert rest_after_graphql.appended == 0 and rest_after_graphql.duplicates == every
    # the REST run's skipped issues are asked for again after GraphQL's last page, and still refused
    assert graphql_after_rest.retried == 5 and skips(graphql_after_rest) == SKIPS
    assert delivery_ids(engine) == delivery_ids(other)
    check(engine, repo)
    check(other, repo)


def test_an_issue_with_more_than_100_timeline_items_is_imported_whole(engine, other):
    repo = SyntheticRepo(issues=30, pr_every=0, long_history=0)
    for i in range(230):
        repo.add_event(8, "labeled" if i % 2 == 0 else "unlabeled", "alice",
                       label={"name": "x-flaky", "color": "ededed"})
    wanted = [e for e in repo.expected_deliveries() if e[0] == 8]
    assert len(wanted) > 201  # the opening and 3 pages of timeline items
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        report = run(engine, gh)
        assert gh.graphql.charged == [3, 1, 1]  # the page of issues, then #8's second and third pages
        run(other, gh, api="rest")
    assert [e for e in logged(engine) if e[0] == 8] == wanted
    assert report.done and delivery_ids(engine) == delivery_ids(other)
    check(engine, repo)


def test_an_issue_deleted_before_its_further_pages_are_read_is_skipped_whole(engine):
    repo = SyntheticRepo(issues=30, pr_every=0, long_history=0)
    for i in range(150):
        repo.add_event(8, "labeled" if i % 2 == 0 else "unlabeled", "alice",
                       label={"name": "x-flaky", "color": "ededed"})
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        gh.graphql.then[1] = lambda: repo.delete(8)  # just after the page of issues is answered
        report = run(engine, gh)
    assert report.status == SKIPPED and skips(report) == [
        (8, 404, "Could not resolve to a node with the global id of 'I_8'")]
    assert 8 not in {number for number, _ in logged(engine)}  # not even its opening
    check(engine, repo)


def test_an_import_interrupted_three_times_adds_the_same_set(engine, other):
    repo = web_bugs()
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        for after, resume in ((3, False), (5, True), (4, True)):
            gh.drop_request(after=after)  # no answer: the connection closes
            with pytest.raises(GitHubError, match="RemoteProtocolError"):
                run(engine, gh, resume=resume)
            cursor = ImportState(engine).get(REPO, "")
            assert cursor.state == "running" and cursor.next_url.startswith("graphql:")
        report = run(engine, gh, resume=True)
        whole = run(other, gh)
    assert report.done and report.duplicates == 0  # each interruption came before its page was appended
    assert ImportState(engine).get(REPO, "").state == "done"
    assert report.pages < whole.pages == 12  # it went on from its cursor
    assert delivery_ids(engine) == delivery_ids(other)
    check(engine, repo)


def test_a_spent_budget_is_waited_out_and_loses_nothing(engine):
    repo = SyntheticRepo(issues=500, pr_every=0)
    said: list[str] = []
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        gh.graphql.exhaust_after(4, reset_in=1.0)  # the 4th request from now: a query
        start = time.time()
        report = run(engine, gh, said)
        (exhausted_at, reset), = gh.graphql.exhausted
        after = [t for t, path, _ in gh.log if path == "/graphql" and t > exhausted_at]
    assert report.done and gh.graphql.refused == 1 and len(report.waits) == 1
    assert min(after[1:]) >= reset  # the refused query, then nothing before the announced reset
    assert reset - start >= 1.0 and report.waits[0] >= reset - exhausted_at - 0.1
    assert said and "GitHub GraphQL rate limit used up (5000 points)" in said[0]
    check(engine, repo)


def test_a_budget_that_runs_low_is_waited_for_before_a_refusal(engine):
    """The last answer left fewer points than the last query cost: the next waits for the reset."""
    repo = SyntheticRepo(issues=500, pr_every=0)
    said: list[str] = []
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        # 3 + 1 (#7's second page) + 3 leave 2 of 9 points: the third page (3) waits for the reset
        gh.graphql.set_limit(limit=9, window=4.0)
        report = run(engine, gh, said)
    assert report.done and gh.graphql.refused == 0 and len(report.waits) >= 1
    assert all("GraphQL rate limit used up (9 points)" in s for s in said)
    check(engine, repo)


def test_a_502_and_secondary_limits_are_retried(engine):
    repo = SyntheticRepo(issues=300, pr_every=0)
    said: list[str] = []
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        gh.fail_request(after=3, status=502)
        gh.secondary_limit(after=5, status=403, retry_after=1)
        report = run(engine, gh, said)
        statuses = gh.statuses("/graphql")
    assert report.done and statuses.count(502) == 1 and statuses.count(403) == 1
    assert len(report.waits) == 2 and report.waits[1] == 1.0
    assert "GitHub answered 502: retrying" in said[0] and "secondary rate limit (403)" in said[1]
    check(engine, repo)


def test_deleted_users_big_ids_and_a_long_body(engine, other):
    repo = SyntheticRepo(issues=30, pr_every=0)
    repo.issue_id_base = 2**32 + 1000  # ids GraphQL's 32-bit databaseId cannot hold
    body = "Le site ne charge pas 🙁 " * 2500
    repo.issues[5].body = body[:60_000]
    repo.add_event(5, "labeled", None, label={"name": "type-bug", "color": "e11d21"})  # by a deleted user
    repo.add_event(6, "closed", None)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        run(engine, gh)
        run(other, gh, api="rest")
    assert delivery_ids(engine) == delivery_ids(other)
    assert f"import-opened-{2**32 + 1005}" in delivery_ids(engine)
    check(engine, repo)
    with engine.connect() as conn:
        payloads = [json.loads(p) for p in conn.execute(
            sa.select(event_log.c.payload).where(event_log.c.issue_number == 5)
            .order_by(event_log.c.position)).scalars()]
    assert payloads[0]["issue"]["id"] == 2**32 + 1005 and len(payloads[0]["issue"]["body"]) == 60_000
    assert payloads[-1]["action"] == "labeled" and payloads[-1]["sender"] is None
    senders = Counter(p["sender"] is None for p in payloads)
    assert senders[True] == 1


def test_the_command_imports_through_graphql_by_default(engine, capsys):
    repo = SyntheticRepo(issues=30)
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        assert import_history(engine, REPO, token=TOKEN, base_url=gh.url, quiet=True, as_json=True) == 0
        said = json.loads(capsys.readouterr().out)
        assert import_history(engine, REPO, token=TOKEN, base_url=gh.url, quiet=True, api="rest") == 0
        (line,) = capsys.readouterr().out.splitlines()
        with pytest.raises(UserError, match="GraphQL API needs a token"):
            import_history(engine, REPO, token=None, base_url=gh.url, quiet=True, api="graphql")
    extra = pages_of_timeline(repo)  # #7's 250 events
    assert (said["api"], said["outcome"], said["points"], said["queries"]) == (
        "graphql", "complete", 3 + extra, 1 + extra)
    assert said["appended"] == len(repo.expected_deliveries())
    assert "0 event(s) appended" in line and "request(s)" in line and "points" not in line
    check(engine, repo)


def test_without_a_token_the_command_imports_through_rest_saying_so(engine, capsys):
    """GraphQL is the default where it can serve: GitHub's GraphQL API answers no one without a token,
    its REST API does (public repositories, a lower rate limit)."""
    repo = SyntheticRepo(issues=30)
    with FakeGitHub(token=None) as gh:
        gh.add_repo(repo)
        assert import_history(engine, REPO, token=None, base_url=gh.url, as_json=True) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["api"] == "rest"
    assert "no GITHUB_TOKEN: importing through GitHub's REST API" in err
    check(engine, repo)


@pytest.mark.parametrize("base_url, endpoint", [
    ("https://api.github.com", "https://api.github.com/graphql"),
    ("https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"),  # GitHub Enterprise Server
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123/graphql"),
])
def test_the_graphql_endpoint_of_a_base_url(base_url, endpoint):
    assert GitHubClient(TOKEN, base_url=base_url).graphql_url == endpoint
