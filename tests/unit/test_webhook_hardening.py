"""The webhook endpoint against what a database cannot hold and what a parser chokes on.

Signed bodies with unrepresentable numbers, lone surrogates, deep nesting and huge headers: never a
5xx, a bounded log line per refusal, and metric labels from a closed set.
"""

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.app import create_app, deliveries_total
from services.ingest.event_log import EventLog
from services.ingest.signature import sign
from services.ingest.webhook import KNOWN_EVENTS
from services.samples import issue_payload
from shared.database import create_engine, migrate
from shared.log import JsonFormatter

SECRET = "hardening-secret"
LIMIT = 512 * 1024
LOG_LINE_BOUND = 1024  # bytes: one refusal's log line, whatever the request carried


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter("test"))
        self.longest, self.count = 0, 0

    def emit(self, record):
        self.count += 1
        self.longest = max(self.longest, len(self.format(record).encode()))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db')}/wcml.db"
    migrate(url)
    return create_app(EventLog(create_engine(url)), [SECRET], LIMIT).test_client()


@pytest.fixture(scope="module")
def lines():
    handler = Lines()
    logger = logging.getLogger("services.ingest")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


LONE = ["\\ud800", "\\udfff", "a\\ud83d", "\\udc00b"]
deep = st.integers(min_value=1_000, max_value=100_000).map(lambda n: "[" * n + "]" * n)
huge_int = st.integers(min_value=4_301, max_value=20_000).map(lambda n: "9" * n)
big_number = st.sampled_from([2**31, 2**63, 2**64 + 1, -1, 10**30]).map(str)
lone = st.sampled_from(LONE).map(lambda s: f'"{s}"')


@st.composite
def hostile_bodies(draw):
    """An issues.opened payload with one field replaced by something hostile (as JSON text)."""
    base = json.dumps(issue_payload(number=draw(st.integers(1, 10**6))))
    target = draw(st.sampled_from(["number", "action", "full_name", "login", "title", "whole"]))
    value = draw({"number": big_number | huge_int, "action": lone, "full_name": lone, "login": lone,
                  "title": lone | huge_int, "whole": deep | huge_int}[target])
    if target == "whole":
        return value.encode()
    payload = json.loads(base)
    marker = "__HOSTILE__"
    if target == "number":
        payload["issue"]["number"] = marker
    elif target == "action":
        payload["action"] = marker
    elif target == "full_name":
        payload["repository"]["full_name"] = marker
    elif target == "login":
        payload["sender"]["login"] = marker
    else:
        payload["issue"]["title"] = marker
    return json.dumps(payload).replace(f'"{marker}"', value).encode()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(body=hostile_bodies(), signed=st.booleans(),
       delivery=st.text(min_size=1, max_size=40) | st.integers(1_000, 300_000).map(lambda n: "d" * n),
       event=st.sampled_from(["issues", "push"]) | st.text(max_size=30) | st.just("e" * 100_000))
def test_hostile_signed_webhooks_get_a_4xx_with_bounded_logs_and_labels(app, lines, body, signed,
                                                                         delivery, event):
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if signed:
        headers["X-Hub-Signature-256"] = sign(SECRET, body)
    try:
        response = app.post("/webhooks/github", data=body, headers=headers)
    except ValueError:  # werkzeug refuses header values with newlines before any request exists
        return
    assert response.status_code < 500, response.get_data()[:300]
    if response.status_code >= 400:
        assert "\n" not in response.json["error"] and len(response.json["error"]) <= 300
    assert lines.longest <= LOG_LINE_BOUND, lines.longest


def test_metric_labels_come_from_a_closed_set(app):
    for i in range(300):  # unsigned requests with ever new event names: no new series
        app.post("/webhooks/github", data=b"{}", headers={"Content-Type": "application/json",
                                                           "X-GitHub-Event": f"made-up-{i}",
                                                           "X-GitHub-Delivery": f"x{i}"})
    events = {labels[0] for labels in _label_sets()}
    assert events <= KNOWN_EVENTS | {"unverified", "other"}, events - KNOWN_EVENTS


def _label_sets():
    for metric in deliveries_total.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                yield sample.labels["event"], sample.labels["outcome"]
