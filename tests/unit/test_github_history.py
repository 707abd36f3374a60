"""REST issue + issue events -> webhook-shaped ``issues`` deliveries (pure functions)."""

from __future__ import annotations

import json

from services.ingest.github.history import deleted, deliveries, event_keys, webhook_fields, webhook_keys

REPOSITORY = {"id": 1, "name": "web-bugs", "full_name": "webcompat/web-bugs", "owner": {"login": "webcompat"}}
USER = {"login": "reporter", "id": 7}
MOD = {"login": "moderator", "id": 8}


def issue(**changes):
    base = {"id": 900, "number": 12, "title": "example.com - blank page", "user": USER, "state": "closed",
            "locked": False, "labels": [{"id": 31, "name": "browser-firefox", "color": "d4c5f9"}],
            "assignees": [], "assignee": None, "closed_at": "2024-01-03T00:00:00Z",
            "milestone": {"id": 4, "number": 4, "title": "needsdiagnosis"}, "body": "It is blank.",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-03T00:00:00Z",
            "state_reason": "completed"}
    return {**base, **changes}


def event(id_, kind, at, **extra):
    return {"id": id_, "event": kind, "actor": MOD, "created_at": at, **extra}


EVENTS = [  # as the API lists them, with events that are not ``issues`` webhooks among them
    event(103, "closed", "2024-01-03T00:00:00Z", state_reason="completed"),
    event(101, "labeled", "2024-01-01T01:00:00Z", label={"name": "browser-firefox", "color": "d4c5f9"}),
    event(104, "subscribed", "2024-01-01T01:30:00Z"),
    event(102, "renamed", "2024-01-02T00:00:00Z",
          rename={"from": "blank page", "to": "example.com - blank page"}),
    event(105, "milestoned", "2024-01-02T12:00:00Z", milestone={"title": "needsdiagnosis"}),
]


def payloads(items):
    return [json.loads(d.payload_text) for d in items]


def test_one_delivery_per_issues_event_in_the_order_they_happened():
    out = deliveries(issue(), EVENTS, REPOSITORY)
    assert [d.action for d in out] == ["opened", "labeled", "edited", "milestoned", "closed"]
    assert [d.delivery_id for d in out] == [f"import-{d.event_key}" for d in out]
    assert out[0].event_key == "opened-900" and len({d.event_key for d in out}) == 5
    assert {(d.event, d.source, d.repo, d.issue_number, d.hook_id) for d in out} == {
        ("issues", "import", "webcompat/web-bugs", 12, None)}
    assert [d.sender for d in out] == ["reporter", "moderator", "moderator", "moderator", "moderator"]


def test_each_payload_holds_the_issue_as_it_was_then():
    opened, labeled, edited, milestoned, closed = payloads(deliveries(issue(), EVENTS, REPOSITORY))
    assert opened["issue"]["title"] == "blank page" and opened["issue"]["labels"] == []
    assert opened["issue"]["state"] == "open" and opened["issue"]["milestone"] is None
    assert labeled["label"] == {"id": 31, "name": "browser-firefox", "color": "d4c5f9"}
    assert [lb["name"] for lb in labeled["issue"]["labels"]] == ["browser-firefox"]
    assert edited["changes"] == {"title": {"from": "blank page"}}
    assert edited["issue"]["title"] == "example.com - blank page"
    assert milestoned["milestone"]["title"] == "needsdiagnosis" and milestoned["milestone"]["id"] == 4
    assert milestoned["issue"]["state"] == "open"
    assert closed["issue"]["state"] == "closed" and closed["issue"]["closed_at"] == "2024-01-03T00:00:00Z"
    assert closed["issue"]["updated_at"] == "2024-01-03T00:00:00Z"
    assert {p["repository"]["full_name"] for p in (opened, closed)} == {"webcompat/web-bugs"}
    assert closed["imported"] == {"event_id": 103, "node_id": None, "event": "closed",
                                  "created_at": "2024-01-03T00:00:00Z"}
    assert opened["imported"]["event"] == "opened" and opened["sender"] == USER


def test_a_label_removed_since_is_on_the_issue_before_its_removal():
    events = [event(201, "labeled", "2024-01-01T01:00:00Z", label={"name": "action-needsmoderation",
                                                                     "color": "ededed"}),
              event(202, "unlabeled", "2024-01-01T02:00:00Z", label={"name": "action-needsmoderation",
                                                                       "color": "ededed"})]
    opened, labeled, unlabeled = payloads(deliveries(issue(labels=[], state="open"), events, REPOSITORY))
    assert [lb["name"] for lb in labeled["issue"]["labels"]] == ["action-needsmoderation"]
    assert unlabeled["issue"]["labels"] == [] and unlabeled["label"]["name"] == "action-needsmoderation"
    assert opened["issue"]["labels"] == []


def test_an_issue_without_events_is_its_opening_only():
    (only,) = deliveries(issue(labels=[], state="open", milestone=None), [], REPOSITORY)
    assert only.action == "opened" and only.delivery_id == "import-opened-900"


def test_an_events_key_is_what_both_apis_say_of_it_not_its_id():
    """GraphQL gives a timeline event no numeric id: the key is made of what both APIs state."""
    rest = deliveries(issue(), EVENTS, REPOSITORY)
    renumbered = [{**e, "id": f"node-{e['id']}", "node_id": f"node-{e['id']}"} for e in EVENTS]
    assert [d.event_key for d in deliveries(issue(), renumbered, REPOSITORY)] == [d.event_key for d in rest]
    other_actor = [{**e, "actor": USER} if e["event"] == "closed" else e for e in EVENTS]
    changed = {d.action for d, o in zip(rest, deliveries(issue(), other_actor, REPOSITORY), strict=True)
               if d.event_key != o.event_key}
    assert changed == {"closed"}


def test_a_label_on_off_and_on_in_one_second_is_three_events():
    at = "2024-01-01T01:00:00Z"
    label = {"name": "type-bug", "color": "e11d21"}
    history = [event(301, "labeled", at, label=label), event(302, "unlabeled", at, label=label),
               event(303, "labeled", at, label=label)]
    keys = event_keys(900, history)
    assert len(set(keys)) == 3 and keys == event_keys(900, [dict(e, id=None) for e in history])


# -- a live webhook's key: the key its event has when read through the API --------------------------

def webhook(action, at, **extra):
    """An ``issues`` webhook's payload as GitHub sends it: the issue's updated_at is the change's time."""
    return {"action": action, "issue": issue(updated_at=at, title=extra.pop("title", "blank page")),
            "repository": REPOSITORY, "sender": extra.pop("sender", MOD), **extra}


def test_a_webhook_has_the_key_its_event_has_through_the_api():
    rest = deliveries(issue(), EVENTS, REPOSITORY)
    live = [webhook("opened", "2024-01-01T00:00:00Z", sender=USER),
            webhook("labeled", "2024-01-01T01:00:00Z", label={"name": "browser-firefox", "color": "d4c5f9"}),
            webhook("edited", "2024-01-02T00:00:00Z", title="example.com - blank page",
                    changes={"title": {"from": "blank page"}}),
            webhook("milestoned", "2024-01-02T12:00:00Z", milestone={"id": 4, "title": "needsdiagnosis"}),
            webhook("closed", "2024-01-03T00:00:00Z")]
    assert webhook_keys(live) == [d.event_key for d in rest]
    # an imported payload holds what a webhook does: read as one, it has its own key
    assert webhook_keys(payloads(rest)) == [d.event_key for d in rest]


def test_a_webhook_that_is_no_rest_event_has_no_key():
    body_edit = webhook("edited", "2024-01-02T00:00:00Z", changes={"body": {"from": "?"}})
    assert webhook_fields(body_edit) is None
    assert webhook_keys([body_edit, webhook("deleted", "2024-01-04T00:00:00Z"),
                         webhook("transferred", "2024-01-04T00:00:00Z")]) == [None, None, None]


def test_webhooks_alike_in_one_second_count_their_ordinals_as_the_events_do():
    at, label = "2024-01-01T01:00:00Z", {"name": "type-bug", "color": "e11d21"}
    history = [event(301, "labeled", at, label=label), event(302, "unlabeled", at, label=label),
               event(303, "labeled", at, label=label)]
    live = [webhook(e["event"], at, label=label) for e in history]
    assert webhook_keys(live) == event_keys(900, history)


def test_a_deletion_is_the_webhooks_shape_with_the_issue_as_last_known():
    gone = deleted(issue(), REPOSITORY)
    payload = json.loads(gone.payload_text)
    assert (gone.action, gone.event_key, gone.delivery_id) == ("deleted", "deleted-900", "import-deleted-900")
    assert payload["action"] == "deleted" and payload["issue"] == issue() and gone.source == "import"
    assert (gone.repo, gone.issue_number) == ("webcompat/web-bugs", 12)
