"""GitHub history import throughput against the fake GitHub on loopback, beside its ceiling, and the
same repository through both APIs: REST's requests beside GraphQL's points.

The ceiling is the API itself: the same pages (issues and each issue's events) fetched with the same
client and nothing else done. The import adds turning events into webhook-shaped deliveries and
appending them to the event log (SQLite, as the embedded mode keeps it). The GraphQL import (100
issues with their events a query) reads the same repository into another log; its points are what
the fake charges by GitHub's documented rule, which is what counts against a token's 5,000 an hour.

    .venv/bin/python -m bench.github_import [--issues 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench.common import save
from services.ingest.event_log import EventLog
from services.ingest.github.importer import Importer
from services.ingest.github.report import ImportReport
from services.ingest.github.state import ImportState
from shared.database import create_engine, migrate
from shared.github import GitHubClient
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo

REPO = "webcompat/web-bugs"


def fetch_only(gh: FakeGitHub) -> tuple[int, float]:
    """Every page the import reads, and nothing else: (requests, seconds)."""
    started = time.perf_counter()
    with GitHubClient(TOKEN, base_url=gh.url) as client:
        client.repository(REPO)
        url = client.issues_url(REPO)
        while url:
            page = client.page(url)
            for issue in page.items or []:
                if not issue.get("pull_request"):
                    events_url = client.events_url(REPO, issue["number"])
                    while events_url:
                        events_url = client.page(events_url).next_url
            url = page.next_url
        return client.counters.requests, time.perf_counter() - started


def graphql_import(gh: FakeGitHub, folder: str) -> tuple[ImportReport, float]:
    """The same repository through GraphQL into a log of its own: (report, seconds)."""
    url = f"sqlite:///{folder}/graphql.db"
    migrate(url)
    engine = create_engine(url)
    gh.graphql.set_limit(limit=1_000_000, window=3600)  # points are counted, not waited for
    started = time.perf_counter()
    with GitHubClient(TOKEN, base_url=gh.url) as client:
        report = Importer(EventLog(engine), client, ImportState(engine)).run(REPO, api="graphql")
    seconds = time.perf_counter() - started
    engine.dispose()
    return report, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=3000)
    args = parser.parse_args()
    repo = SyntheticRepo(issues=args.issues)
    events = len(repo.expected_deliveries())
    with FakeGitHub() as gh, tempfile.TemporaryDirectory() as folder:
        gh.add_repo(repo)
        gh.set_rate_limit(limit=1_000_000, window=3600)  # the budget is not what is measured here
        requests, ceiling_seconds = fetch_only(gh)
        url = f"sqlite:///{folder}/wcml.db"
        migrate(url)
        engine = create_engine(url)
        started = time.perf_counter()
        with GitHubClient(TOKEN, base_url=gh.url) as client:
            report = Importer(EventLog(engine), client, ImportState(engine)).run(REPO)
        import_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with GitHubClient(TOKEN, base_url=gh.url) as client:
            again = Importer(EventLog(engine), client, ImportState(engine)).run(REPO)
        again_seconds = time.perf_counter() - started
        engine.dispose()
        graphql, graphql_seconds = graphql_import(gh, folder)
    ceiling = events / ceiling_seconds
    rate = report.appended / import_seconds
    save("github_import", {
        "issues": args.issues, "events": events, "requests": requests,
        "ceiling_events_per_s": round(ceiling), "ceiling_requests_per_s": round(requests / ceiling_seconds),
        "import_events_per_s": round(rate), "ratio_to_ceiling": round(rate / ceiling, 3),
        "appended": report.appended, "reimport_seconds": round(again_seconds, 2),
        "reimport_not_modified": again.not_modified, "reimport_appended": again.appended,
        "rest_requests": report.requests,
        "graphql_points": graphql.points, "graphql_queries": graphql.queries,
        "graphql_requests": graphql.requests, "graphql_appended": graphql.appended,
        "graphql_events_per_s": round(graphql.appended / graphql_seconds),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
