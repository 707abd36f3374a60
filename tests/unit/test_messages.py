import json

import pytest

from shared.messages import (
    EventEnvelope,
    IssueSnapshot,
    MessageError,
    Prediction,
    TaskMessage,
    decode,
    decode_each,
    encode,
    encode_batch,
    replace,
    split_batch,
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
    from shared.event_routes import load_rules, route
    from shared.messages import replace

    imported = replace(EVENT, source="import", payload={"issue": {"number": 3, "title": "t"}})
    assert imported.routing_key == "import.issues.opened"
    assert replace(imported, replay_id="r-1").routing_key == "replay.issues.opened"
    tasks = route(load_rules(), decode(encode(imported), EventEnvelope))
    assert tasks and {t.source for t in tasks} == {"import"}
    assert decode(encode(replace(PRED, source="import")), Prediction).source == "import"


def test_a_batch_reads_as_its_messages_and_one_message_as_itself():
    tasks = [replace(TASK, delivery_id=f"d{i}") for i in range(3)]
    assert encode_batch(tasks[:1]) == encode(tasks[0])  # one is sent plain
    body = encode_batch(tasks)
    assert json.loads(body)["kind"] == "batch" and json.loads(body)["of"] == "task"
    assert [d.message for d in decode_each(body, TaskMessage)] == tasks
    assert all(d.error is None and d.body is body for d in decode_each(body, TaskMessage))
    assert [d.alone for d in decode_each(body, TaskMessage)] == [encode(t) for t in tasks]  # each by itself
    [one] = decode_each(encode(TASK), TaskMessage)
    assert one.message == TASK and one.error is None and one.alone is one.body
    with pytest.raises(ValueError, match="one kind"):
        encode_batch([TASK, PRED])


def test_a_bad_item_of_a_batch_is_refused_alone_with_a_body_of_its_own():
    doc = json.loads(encode_batch([PRED, replace(PRED, delivery_id="d2"), replace(PRED, delivery_id="d3")]))
    doc["items"][1]["confidence"] = "high"
    good, bad, other = decode_each(json.dumps(doc).encode(), Prediction)
    assert (good.message.delivery_id, other.message.delivery_id) == ("d1", "d3")
    assert bad.message is None and "confidence" in bad.error
    assert bad.alone is bad.body
    alone = json.loads(bad.body)  # a message of its own: what its dead letter keeps
    assert alone["kind"] == "prediction" and alone["delivery_id"] == "d2"
    with pytest.raises(MessageError, match="confidence"):
        decode(bad.body, Prediction)


@pytest.mark.parametrize("body, fragment", [
    (encode_batch([TASK, replace(TASK, delivery_id="d2")]), "prediction messages, got one of 'task'"),
    (json.dumps({"v": 1, "kind": "batch", "of": "prediction", "items": []}).encode(), "0 items"),
    (json.dumps({"v": 1, "kind": "batch", "of": "prediction"}).encode(), "no items"),
    (b"\x00garbage", "not JSON"),
    (encode(TASK), "expected a prediction"),
])
def test_a_body_that_is_no_batch_of_the_kind_is_refused_whole(body, fragment):
    [refused] = decode_each(body, Prediction)
    assert refused.message is None and fragment in refused.error and refused.body is body


def test_a_batch_splits_into_halves_down_to_plain_items():
    tasks = [TaskMessage(task="issuetype", delivery_id=f"d{i}", position=i, event="issues", action="opened",
                         issue=IssueSnapshot("o/r", i, "", "t", "b", None)) for i in range(5)]
    first, second = split_batch(encode_batch(tasks))
    assert [i.message for i in decode_each(first, TaskMessage)] == tasks[:2]
    assert [i.message for i in decode_each(second, TaskMessage)] == tasks[2:]
    one, other = split_batch(first)
    assert decode(one, TaskMessage) == tasks[0] and decode(other, TaskMessage) == tasks[1]
    assert split_batch(one) is None and split_batch(b"{not json") is None
    assert split_batch(b'{"v":1,"kind":"batch","of":"task","items":[{}]}') is None
