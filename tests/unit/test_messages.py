import json

import pytest

from shared.messages import (
    EventEnvelope,
    IssueSnapshot,
    MessageError,
    Prediction,
    TaskMessage,
    decode,
    encode,
)

ISSUE = IssueSnapshot(repo="o/r", number=3, url="u", title="t", body="b", author="a", labels=("x",))
TASK = TaskMessage(task="issuetype", delivery_id="d1", position=5, event="issues", action="opened",
                   issue=ISSUE)
EVENT = EventEnvelope(position=1, delivery_id="d1", event="issues", action="opened", repo="o/r",
                      issue_number=3, sender="s", received_at="2026-01-01T00:00:00+00:00", payload={"a": 1})
PRED = Prediction(task="issuetype", model_version="v1", delivery_id="d1", position=5, repo="o/r", number=3,
                  label="bug", confidence=0.9, probabilities={"bug": 0.9, "feature": 0.1},
                  predicted_at="2026-01-01T00:00:00+00:00")


@pytest.mark.parametrize("message", [EVENT, TASK, PRED])
def test_round_trip(message):
    assert decode(encode(message), type(message)) == message


def test_versioned_and_typed():
    doc = json.loads(encode(TASK))
    assert doc["v"] == 1 and doc["kind"] == "task"
    assert TASK.task_id == "d1:issuetype"
    assert EVENT.routing_key == "github.issues.opened"


@pytest.mark.parametrize("body, fragment", [
    (b"\x00garbage", "not JSON"),
    (b"[]", "not a JSON object"),
    (json.dumps({"v": 2, "kind": "task"}).encode(), "schema version"),
    (encode(PRED), "expected a task"),
    (json.dumps({**json.loads(encode(TASK)), "extra": 1}).encode(), "unknown field"),
    (json.dumps({k: v for k, v in json.loads(encode(TASK)).items() if k != "issue"}).encode(), "missing"),
    (json.dumps({**json.loads(encode(TASK)), "position": "5"}).encode(), "position"),
    (json.dumps({**json.loads(encode(TASK)), "issue": 1}).encode(), "issue must be an object"),
])
def test_bad_bodies_are_refused_with_a_reason(body, fragment):
    with pytest.raises(MessageError, match=fragment):
        decode(body, TaskMessage)


def test_where_an_event_came_from_is_its_routing_prefix_and_is_carried_to_the_prediction():
    from shared.messages import replace
    from shared.routing import load_rules, route

    imported = replace(EVENT, source="import", payload={"issue": {"number": 3, "title": "t"}})
    assert imported.routing_key == "import.issues.opened"
    assert replace(imported, replay_id="r-1").routing_key == "replay.issues.opened"
    tasks = route(load_rules(), decode(encode(imported), EventEnvelope))
    assert tasks and {t.source for t in tasks} == {"import"}
    assert decode(encode(replace(PRED, source="import")), Prediction).source == "import"
