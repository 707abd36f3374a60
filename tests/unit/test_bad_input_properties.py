"""Property-based: random, truncated, oversized and wrongly-typed input always gets a clear answer.

The webhook endpoint answers 4xx with a one-line JSON reason (never 500); every consumer turns a bad
message into a rejection with a reason (dead-lettered), never an exception that would crash it.
"""

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.dispatcher.worker import Dispatcher
from services.ingest.app import create_app
from services.ingest.event_log import EventLog
from services.ingest.signature import sign
from services.predictor.serving.worker import Predictor
from services.predictor.training.demo import ensure_demo_bundles
from services.samples import issue_payload
from services.store.writer import PredictionWriter
from shared import topology
from shared.blobs import FileBlobStore
from shared.broker import Delivery
from shared.broker.memory import MemoryBroker
from shared.database import create_engine, migrate
from shared.event_routes import load_rules
from shared.messages import EventEnvelope, IssueSnapshot, Prediction, TaskMessage, encode

SECRET = "property-secret"
LIMIT = 4096
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db')}/wcml.db"
    migrate(url)
    return create_app(EventLog(create_engine(url)), [SECRET], LIMIT).test_client()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=LIMIT + 64) | json_values.map(lambda v: json.dumps(v).encode()),
       signed=st.booleans(),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain",
                                     "", "application/json; charset=utf-8"]),
       event=st.sampled_from(["issues", "", "ping", "Issues!", "x" * 80]) | st.text(string.ascii_lowercase),
       delivery=st.text(max_size=80))
def test_webhook_endpoint_never_answers_500(app, body, signed, content_type, event, delivery):
    headers = {"Content-Type": content_type, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if signed:
        headers["X-Hub-Signature-256"] = sign(SECRET, body)
    try:
        response = app.post("/webhooks/github", data=body, headers=headers)
    except ValueError:  # werkzeug refuses header values with newlines before any request exists
        return
    assert response.status_code in (200, 202, 400, 401, 413, 415), response.get_data()[:200]
    if response.status_code >= 400:
        reason = response.json["error"]
        assert isinstance(reason, str) and reason and "\n" not in reason


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.dictionaries(st.sampled_from(["action", "issue", "repository", "sender", "label"]),
                               json_values))
def test_signed_json_of_any_shape_is_accepted_or_refused_cleanly(app, payload):
    body = json.dumps(payload).encode()
    response = app.post("/webhooks/github", data=body, headers={
        "Content-Type": "application/json", "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": f"prop-{abs(hash(body))}", "X-Hub-Signature-256": sign(SECRET, body)})
    assert response.status_code in (200, 202)


def delivery(body: bytes) -> Delivery:
    return Delivery(body=body, routing_key="x", exchange="x", headers={}, redelivered=False, tag=1)


@pytest.fixture(scope="module")
def consumers(tmp_path_factory):
    root = tmp_path_factory.mktemp("consumers")
    ensure_demo_bundles(root / "models", ["issuetype"], announce=lambda _: None)
    url = f"sqlite:///{root}/wcml.db"
    migrate(url)
    broker = MemoryBroker()
    topology.declare(broker, ["issuetype", "needsdiagnosis"])
    return {
        EventEnvelope: Dispatcher(load_rules(), broker).handle,
        TaskMessage: Predictor("issuetype", root / "models", broker).handle,
        Prediction: PredictionWriter(create_engine(url), FileBlobStore(root / "blobs")).handle,
    }


VALID = {
    EventEnvelope: EventEnvelope(position=1, delivery_id="d", event="issues", action="opened", repo="a/b",
                                 issue_number=1, sender="s", received_at="2026-01-01T00:00:00+00:00",
                                 payload=issue_payload()),
    TaskMessage: TaskMessage(task="issuetype", delivery_id="d", position=1, event="issues", action="opened",
                             issue=IssueSnapshot(repo="a/b", number=1, url="u", title="t", body="b",
                                                 author="x")),
    Prediction: Prediction(task="issuetype", model_version="v1", delivery_id="d", position=1, repo="a/b",
                           number=1, label="bug", confidence=0.5, probabilities={"bug": 0.5},
                           predicted_at="2026-01-01T00:00:00+00:00"),
}


def mutations(kind):
    base = json.loads(encode(VALID[kind]))
    replaced = st.fixed_dictionaries({}).flatmap(lambda _: st.sampled_from(sorted(base))).flatmap(
        lambda key: json_values.map(lambda value: json.dumps({**base, key: value}).encode()))
    truncated = st.integers(0, len(encode(VALID[kind])) - 1).map(lambda n: encode(VALID[kind])[:n])
    return st.binary(max_size=300) | replaced | truncated


@pytest.mark.parametrize("kind", [EventEnvelope, TaskMessage, Prediction], ids=lambda k: k.kind)
def test_every_consumer_rejects_bad_messages_with_a_reason_and_never_raises(consumers, kind):
    handle = consumers[kind]

    @settings(max_examples=150, deadline=None)
    @given(body=mutations(kind))
    def check(body):
        rejections = handle([delivery(body)])
        assert len(rejections) <= 1
        for r in rejections:
            assert r.reason and "\n" not in r.reason

    check()
