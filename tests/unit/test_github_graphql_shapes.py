"""GraphQL issue + timeline items -> REST issue + REST events (pure), so that ``history.deliveries``
gives the same event keys whichever API read the issue."""

from __future__ import annotations

from services.ingest.github import graphql_shapes
from services.ingest.github.graphql import page_of_issues
from services.ingest.github.history import deliveries

REPOSITORY = {"id": 1, "name": "web-bugs", "full_name": "webcompat/web-bugs", "owner": {"login": "webcompat"}}
BIG_ID = 2**32 + 17


def graphql_issue(**changes):
    base = {
        "id": "I_kwDOAQ", "fullDatabaseId": str(BIG_ID), "number": 12, "title": "example.com - blank page",
        "body": "", "state": "CLOSED", "stateReason": "NOT_PLANNED", "locked": False,
        "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-03T00:00:00Z",
        "closedAt": "2024-01-03T00:00:00Z", "url": "https://github.com/webcompat/web-bugs/issues/12",
        "author": {"__typename": "User", "login": "reporter"},
        "labels": {"nodes": [{"name": "browser-firefox", "color": "d4c5f9"}]},
        "milestone": {"title": "needsdiagnosis", "number": 4},
        "assignees": {"nodes": [{"__typename": "Bot", "login": "webcompat-app"}]},
        "timelineItems": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": ITEMS},
    }
    return {**base, **changes}


MOD = {"__typename": "User", "login": "moderator"}
ITEMS = [
    {"__typename": "LabeledEvent", "id": "LE_1", "createdAt": "2024-01-01T01:00:00Z", "actor": MOD,
     "label": {"name": "browser-firefox", "color": "d4c5f9"}},
    {"__typename": "RenamedTitleEvent", "id": "RTE_2", "createdAt": "2024-01-02T00:00:00Z", "actor": None,
     "previousTitle": "blank page", "currentTitle": "example.com - blank page"},
    {"__typename": "MilestonedEvent", "id": "ME_3", "createdAt": "2024-01-02T12:00:00Z", "actor": MOD,
     "milestoneTitle": "needsdiagnosis"},
    {"__typename": "AssignedEvent", "id": "AE_4", "createdAt": "2024-01-02T13:00:00Z", "actor": MOD,
     "assignee": {"__typename": "Bot", "login": "webcompat-app"}},
    {"__typename": "ClosedEvent", "id": "CE_5", "createdAt": "2024-01-03T00:00:00Z",
     "actor": {"__typename": "Bot", "login": "webcompat-app"}, "stateReason": "NOT_PLANNED"},
    {"__typename": "CrossReferencedEvent", "id": "CRE_6", "createdAt": "2024-01-03T00:00:01Z"},
]

# the same issue as REST serves it
REST_ISSUE = {"id": BIG_ID, "node_id": "I_kwDOAQ", "number": 12, "title": "example.com - blank page",
              "user": {"login": "reporter", "id": 7}, "state": "closed", "state_reason": "not_planned",
              "locked": False, "labels": [{"id": 31, "name": "browser-firefox", "color": "d4c5f9"}],
              "assignees": [{"login": "webcompat-app[bot]"}], "body": None,
              "milestone": {"id": 4, "number": 4, "title": "needsdiagnosis"},
              "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-03T00:00:00Z",
              "closed_at": "2024-01-03T00:00:00Z"}
REST_EVENTS = [
    {"id": 101, "event": "labeled", "actor": {"login": "moderator"}, "created_at": "2024-01-01T01:00:00Z",
     "label": {"name": "browser-firefox", "color": "d4c5f9"}},
    {"id": 102, "event": "renamed", "actor": None, "created_at": "2024-01-02T00:00:00Z",
     "rename": {"from": "blank page", "to": "example.com - blank page"}},
    {"id": 103, "event": "subscribed", "actor": {"login": "moderator"}, "created_at": "2024-01-02T01:00:00Z"},
    {"id": 104, "event": "milestoned", "actor": {"login": "moderator"}, "created_at": "2024-01-02T12:00:00Z",
     "milestone": {"title": "needsdiagnosis"}},
    {"id": 105, "event": "assigned", "actor": {"login": "moderator"}, "created_at": "2024-01-02T13:00:00Z",
     "assignee": {"login": "webcompat-app[bot]", "type": "Bot"}},
    {"id": 106, "event": "closed", "actor": {"login": "webcompat-app[bot]"},
     "created_at": "2024-01-03T00:00:00Z", "state_reason": "not_planned"},
]


def test_the_issue_in_rest_shape():
    issue = graphql_shapes.rest_issue(graphql_issue())
    assert issue == {
        "id": BIG_ID, "node_id": "I_kwDOAQ", "number": 12, "title": "example.com - blank page", "body": None,
        "user": {"login": "reporter"}, "labels": [{"name": "browser-firefox", "color": "d4c5f9"}],
        "state": "closed", "state_reason": "not_planned",
        "milestone": {"title": "needsdiagnosis", "number": 4}, "assignees": [{"login": "webcompat-app[bot]"}],
        "locked": False, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-03T00:00:00Z",
        "closed_at": "2024-01-03T00:00:00Z",
        "html_url": "https://github.com/webcompat/web-bugs/issues/12"}
    assert graphql_shapes.rest_issue(graphql_issue(author=None, body="x" * 60_000))["user"] is None


def test_each_timeline_item_is_the_rest_event_of_its_name_and_others_are_left_out():
    events = graphql_shapes.rest_events(ITEMS)
    assert [e["event"] for e in events] == ["labeled", "renamed", "milestoned", "assigned", "closed"]
    ids = ["LE_1", "RTE_2", "ME_3", "AE_4", "CE_5"]
    assert [e["id"] for e in events] == [e["node_id"] for e in events] == ids
    labeled, renamed, milestoned, assigned, closed = events
    assert labeled["label"] == {"name": "browser-firefox", "color": "d4c5f9"}
    assert renamed["rename"] == {"from": "blank page", "to": "example.com - blank page"}
    assert renamed["actor"] is None  # a deleted user
    assert milestoned["milestone"] == {"title": "needsdiagnosis"}
    assert assigned["assignee"] == {"login": "webcompat-app[bot]"}  # REST's login for an App's bot
    assert closed["state_reason"] == "not_planned" and closed["actor"] == {"login": "webcompat-app[bot]"}
    every = [{"__typename": name, "id": f"X_{i}", "createdAt": "2024-01-01T00:00:00Z"}
             for i, name in enumerate(graphql_shapes.EVENT_NAMES)]
    names = [e["event"] for e in graphql_shapes.rest_events(every)]
    assert names == list(graphql_shapes.EVENT_NAMES.values())


def test_the_same_deliveries_and_event_keys_as_the_rest_import():
    """Through either API: the same delivery ids and event keys, the same actions, senders and issue
    as it was at each event."""
    through_graphql = deliveries(graphql_shapes.rest_issue(graphql_issue()),
                                 graphql_shapes.rest_events(ITEMS), REPOSITORY)
    through_rest = deliveries(REST_ISSUE, REST_EVENTS, REPOSITORY)
    assert [d.delivery_id for d in through_graphql] == [d.delivery_id for d in through_rest]
    assert [d.event_key for d in through_graphql] == [d.event_key for d in through_rest]
    assert len(through_graphql) == 6 and through_graphql[0].delivery_id == f"import-opened-{BIG_ID}"
    assert [(d.action, d.sender) for d in through_graphql] == [(d.action, d.sender) for d in through_rest]


def test_a_page_of_the_answer_says_where_the_timeline_and_the_issues_go_on():
    more = {"pageInfo": {"hasNextPage": True, "endCursor": "Y3Vyc29yOjEwMA=="}, "nodes": ITEMS[:2]}
    data = {"repository": {"issues": {
        "totalCount": 250, "pageInfo": {"hasNextPage": True, "endCursor": "Y3Vyc29yOnYyOjk5"},
        "nodes": [graphql_issue(), graphql_issue(number=13, timelineItems=more)]}}}
    page = page_of_issues(data)
    assert (page.has_next, page.end_cursor, page.total) == (True, "Y3Vyc29yOnYyOjk5", 250)
    assert [(r.number, len(r.events), r.more_after) for r in page.issues] == [
        (12, 5, None), (13, 2, "Y3Vyc29yOjEwMA==")]
