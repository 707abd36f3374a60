"""Reading a repository's issues with their events through GitHub's GraphQL API, 100 issues a query.

One query (``ISSUES``) answers a page of 100 issues, oldest first, each with its labels, assignees
and its first 100 timeline items of the types that are ``issues`` webhooks; ``PageOfIssues`` holds
them in REST's shapes (graphql_shapes.py). An issue with more than 100 such items has the rest read
with ``TIMELINE`` (its node, 100 items a query, from where the first page ended): ``rest_of_events``.

What a query costs, by GitHub's rule (the requests needed to fill each connection, its parent's
count of nodes times one, summed, divided by 100, rounded; at least 1): ``issues`` 1 + ``labels``
100 + ``assignees`` 100 + ``timelineItems`` 100 = 301 requests: 3 points for 100 issues and up to
10,000 events; a further page of one issue's timeline costs 1. The page sizes inside an issue do
not change the cost (only the number of issues does), so they are as large as GitHub holds:
labels 100 (an issue's limit), assignees 10 (likewise), timeline items 100 (the most a page gives).

Pull requests are not in ``issues`` and deleted or transferred issues are not listed: nothing to
leave out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.ingest.github import graphql_shapes
from shared.github import GitHubClient

ISSUES_PER_QUERY = 100
ITEMS_PER_QUERY = 100
ITEM_TYPES = ("LABELED_EVENT UNLABELED_EVENT CLOSED_EVENT REOPENED_EVENT RENAMED_TITLE_EVENT "
              "MILESTONED_EVENT DEMILESTONED_EVENT ASSIGNED_EVENT UNASSIGNED_EVENT LOCKED_EVENT "
              "UNLOCKED_EVENT PINNED_EVENT UNPINNED_EVENT").split()

_ACTOR = "actor { __typename login }"
TIMELINE_PAGE = f"""
fragment TimelinePage on IssueTimelineItemsConnection {{
  pageInfo {{ hasNextPage endCursor }}
  nodes {{
    __typename
    ... on Node {{ id }}
    ... on LabeledEvent {{ createdAt {_ACTOR} label {{ name color }} }}
    ... on UnlabeledEvent {{ createdAt {_ACTOR} label {{ name color }} }}
    ... on ClosedEvent {{ createdAt {_ACTOR} stateReason }}
    ... on ReopenedEvent {{ createdAt {_ACTOR} }}
    ... on RenamedTitleEvent {{ createdAt {_ACTOR} previousTitle currentTitle }}
    ... on MilestonedEvent {{ createdAt {_ACTOR} milestoneTitle }}
    ... on DemilestonedEvent {{ createdAt {_ACTOR} milestoneTitle }}
    ... on AssignedEvent {{ createdAt {_ACTOR} assignee {{ __typename ... on Actor {{ login }} }} }}
    ... on UnassignedEvent {{ createdAt {_ACTOR} assignee {{ __typename ... on Actor {{ login }} }} }}
    ... on LockedEvent {{ createdAt {_ACTOR} }}
    ... on UnlockedEvent {{ createdAt {_ACTOR} }}
    ... on PinnedEvent {{ createdAt {_ACTOR} }}
    ... on UnpinnedEvent {{ createdAt {_ACTOR} }}
  }}
}}
"""
_TIMELINE_ARGS = f"first: {ITEMS_PER_QUERY}, itemTypes: [{', '.join(ITEM_TYPES)}]"
RATE_LIMIT = "rateLimit { cost remaining resetAt limit used }"

ISSUES = f"""
query Issues($owner: String!, $name: String!, $cursor: String, $since: DateTime) {{
  repository(owner: $owner, name: $name) {{
    issues(first: {ISSUES_PER_QUERY}, after: $cursor, orderBy: {{field: CREATED_AT, direction: ASC}},
           filterBy: {{since: $since}}) {{
      totalCount
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        id fullDatabaseId number title body state stateReason(enableDuplicate: true) locked
        createdAt updatedAt closedAt url
        author {{ __typename login }}
        labels(first: 100) {{ nodes {{ name color }} }}
        milestone {{ title number }}
        assignees(first: 10) {{ nodes {{ __typename login }} }}
        timelineItems({_TIMELINE_ARGS}) {{ ...TimelinePage }}
      }}
    }}
  }}
  {RATE_LIMIT}
}}
{TIMELINE_PAGE}"""

TIMELINE = f"""
query Timeline($id: ID!, $cursor: String) {{
  node(id: $id) {{
    ... on Issue {{ timelineItems({_TIMELINE_ARGS}, after: $cursor) {{ ...TimelinePage }} }}
  }}
  {RATE_LIMIT}
}}
{TIMELINE_PAGE}"""


@dataclass
class IssueRead:
    """One issue of a page: REST's issue, the REST events of its first timeline page, and where its
    timeline goes on (None: the events are all there)."""

    issue: dict[str, Any]
    events: list[dict[str, Any]]
    more_after: str | None = None

    @property
    def number(self) -> int:
        return self.issue["number"]


@dataclass
class PageOfIssues:
    issues: list[IssueRead] = field(default_factory=list)
    end_cursor: str | None = None
    has_next: bool = False
    total: int | None = None  # issues the query's filter lists in all


def _timeline(connection: Any) -> tuple[list[dict[str, Any]], str | None]:
    """A page of timeline items: its REST events, and the cursor after it when there is more."""
    connection = connection if isinstance(connection, dict) else {}
    info = connection.get("pageInfo") or {}
    events = graphql_shapes.rest_events(connection.get("nodes") or [])
    return events, (info.get("endCursor") if info.get("hasNextPage") else None)


def page_of_issues(data: dict[str, Any]) -> PageOfIssues:
    """A page of ``ISSUES``'s answer (pure)."""
    repository = data.get("repository") or {}
    issues = repository.get("issues") or {}
    info = issues.get("pageInfo") or {}
    page = PageOfIssues(end_cursor=info.get("endCursor"), has_next=bool(info.get("hasNextPage")),
                        total=issues.get("totalCount"))
    for node in issues.get("nodes") or []:
        if isinstance(node, dict):
            events, more = _timeline(node.get("timelineItems"))
            page.issues.append(IssueRead(graphql_shapes.rest_issue(node), events, more))
    return page


class GraphQLReader:
    """Pages of a repository's issues through ``GitHubClient.graphql``."""

    def __init__(self, client: GitHubClient):
        self.client = client

    def page(self, repo: str, cursor: str | None, since: str | None = None) -> PageOfIssues:
        """The 100 issues after ``cursor`` (None: the first), oldest first; with ``since`` (ISO 8601),
        only issues updated at or after it."""
        owner, _, name = repo.partition("/")
        data = self.client.graphql(ISSUES, {"owner": owner, "name": name, "cursor": cursor, "since": since},
                                   what=repo)
        return page_of_issues(data)

    def rest_of_events(self, repo: str, read: IssueRead) -> list[dict[str, Any]]:
        """All of the issue's events: its first page's, then every further page of its timeline."""
        events = list(read.events)
        cursor = read.more_after
        while cursor:
            data = self.client.graphql(TIMELINE, {"id": read.issue["node_id"], "cursor": cursor},
                                       what=f"{repo}#{read.number}")
            more, cursor = _timeline((data.get("node") or {}).get("timelineItems"))
            events.extend(more)
        return events
