"""The query API's read models of replay runs and actions (SQLite): fed by the replay source's and the
actions service's reports, never rolled back by a late or repeated one, and reached through the
embedded mode's broker (its durable SQLite queues) with the API service's own consumers."""

from __future__ import annotations

import json
import threading

import pytest

from services.actions.ledger import Ledger
from services.actions.policy import parse_policy
from services.actions.reports import to_broker
from services.actions.worker import ActionsWorker
from services.api import action_view, run_view
from services.api import service as api_service
from services.ingest.event_log import EventLog, event_log
from services.ingest.replay import Replayer, ReplaySource
from services.ingest.replay_runs import ReplayRuns
from services.samples import issue_payload
from shared import service as runner
from shared import topology
from shared.broker import Outgoing, PublishError
from shared.broker.memory import MemoryBroker
from shared.broker.port import Delivery
from shared.broker.sqlite import SQLiteBroker
from shared.database import utcnow
from shared.known import Known
from shared.messages import (
    CONTROL_EXCHANGE,
    CONTROL_KEYS,
    RESULTS_EXCHANGE,
    STATE_EXCHANGE,
    ActionRecord,
    Prediction,
    ReplayRequest,
    encode,
)
from shared.replays import LogFilter, request_for
from tests.builders import AUTH, KEYS, add_run
from tests.waiting import eventually

POLICY = '[[rule]]\ntask = "issuetype"\nlabel = "bug"\nmin_confidence = 0.9\nadd_labels = ["bug"]\n'


def logged(engine, count: int = 5) -> None:
    rows = [{"delivery_id": f"d-{i}", "event": "issues", "action": "opened", "repo": "webcompat/web-bugs",
             "issue_number": i, "sender": "reporter", "received_at": utcnow(), "published_at": utcnow(),
             "payload": json.dumps(issue_payload(number=i, sender="reporter", title=f"site{i}.example"))}
            for i in range(1, count + 1)]
    with engine.begin() as conn:
        conn.execute(event_log.insert(), rows)


def action(n: int, state: str, **changes) -> ActionRecord:
    values = dict(id=n, repo="webcompat/web-bugs", number=n, task="issuetype", action="label", mode="live",
                  target="bug", state=state, reason=None if state == "pending" else f"{state} #{n}",
                  delivery_id=f"d-{n}", model_version="m1", label="bug", confidence=0.95, rule=1,
                  created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z")
    return ActionRecord(**{**values, **changes})


def delivered(message) -> Delivery:
    return Delivery(encode(message), message.kind, STATE_EXCHANGE, {}, False, 0)


# -- replay runs -----------------------------------------------------------------------------------

def test_a_late_or_repeated_run_report_never_rolls_the_run_back(sqlite_engine):
    add_run(sqlite_engine, "r-1", revision=3, state="running", published=6, total=10)
    add_run(sqlite_engine, "r-1", revision=2, state="running", published=2, total=10)  # late
    add_run(sqlite_engine, "r-1", revision=3, state="running", published=6, total=10)  # again
    add_run(sqlite_engine, "r-1", revision=0, state="requested", published=0, total=0)  # the API's own
    run = run_view.get_run(sqlite_engine, "r-1")
    assert (run["state"], run["published"], run["progress"]) == ("running", 6, 0.6)
    add_run(sqlite_engine, "r-1", revision=4, state="done", published=10, total=10,
            finished_at="2026-01-02T00:00:00+00:00")
    run = run_view.get_run(sqlite_engine, "r-1")
    assert (run["state"], run["progress"], run["finished_at"]) == ("done", 1.0, "2026-01-02T00:00:00Z")


def test_reports_of_one_run_in_one_batch_keep_the_highest_revision(sqlite_engine):
    from shared.replays import requested

    request = request_for(LogFilter(repo="a/b"), created_by="t")
    runs = [requested(request, revision=r, state=s, total=4) for r, s in ((2, "running"), (5, "done"),
                                                                       (1, "requested"))]
    assert run_view.handle(sqlite_engine, [delivered(r) for r in runs]) == []
    assert run_view.get_run(sqlite_engine, request.run_id)["state"] == "done"


def test_a_report_that_is_not_a_run_is_dead_lettered(sqlite_engine):
    body = b'{"v": 1, "kind": "replay-run", "run_id": "x"}'
    bad = Delivery(body, "replay-run", STATE_EXCHANGE, {}, False, 0)
    [rejection] = run_view.handle(sqlite_engine, [bad])
    assert rejection.delivery is bad and "missing field(s) revision" in rejection.reason
    from shared.messages import replace
    from shared.replays import requested

    run, other = (requested(request_for(LogFilter(), created_by="t"), revision=1) for _ in range(2))
    undated = delivered(replace(run, created_at="yesterday"))
    [rejection] = run_view.handle(sqlite_engine, [undated, delivered(other)])  # the other one is kept
    assert rejection.delivery is undated and "not an ISO 8601" in rejection.reason
    assert [r["id"] for r in run_view.list_runs(sqlite_engine)] == [other.run_id]


class Flaky(MemoryBroker):
    """The in-process broker, refusing reports on ``wcml.state`` while ``down`` is set."""

    down = False

    def publish(self, messages):
        if self.down and any(m.exchange == STATE_EXCHANGE for m in messages):
            raise PublishError("state reports refused")
        super().publish(messages)


def kept_runs(broker, engine) -> None:
    """What the API's consumer of runs.api does with what is on the queue."""
    reports = broker.get(topology.RUNS_VIEW_QUEUE.name, 1000)
    assert run_view.handle(engine, reports) == []
    broker.settle(reports, requeue=False)


def test_a_final_state_the_broker_did_not_take_reaches_the_api_by_the_sweep(sqlite_engine):
    logged(sqlite_engine)
    broker = Flaky()
    topology.declare(broker)
    replayer = Replayer(EventLog(sqlite_engine), broker, ReplayRuns(sqlite_engine))
    run = replayer.start(request_for(LogFilter(), created_by="t"))
    kept_runs(broker, sqlite_engine)
    assert run_view.get_run(sqlite_engine, run.run_id)["state"] == "running"
    broker.down = True  # every report of the run is lost; its events still go out
    assert replayer.run(run.run_id, threading.Event()).state == "done"
    kept_runs(broker, sqlite_engine)
    assert run_view.get_run(sqlite_engine, run.run_id)["state"] == "running"
    assert [r.state for r in replayer.runs.unreported()] == ["done"]
    with pytest.raises(PublishError):
        replayer.reports.sweep()
    broker.down = False
    assert replayer.reports.sweep() == 1 and replayer.reports.sweep() == 0
    kept_runs(broker, sqlite_engine)
    shown = run_view.get_run(sqlite_engine, run.run_id)
    assert (shown["state"], shown["published"], shown["total"]) == ("done", 5, 5)


def test_a_request_delivered_again_reports_its_run_as_it_stands(sqlite_engine):
    logged(sqlite_engine)
    broker = MemoryBroker()
    topology.declare(broker)
    replayer = Replayer(EventLog(sqlite_engine), broker, ReplayRuns(sqlite_engine))
    source = ReplaySource(replayer)
    request = request_for(LogFilter(to_position=3), created_by="t")
    body = Delivery(encode(request), "replay", CONTROL_EXCHANGE, {}, False, 0)
    assert source.handle([body]) == []
    assert replayer.run_requested(threading.Event()) == 1
    kept_runs(broker, sqlite_engine)
    with sqlite_engine.begin() as conn:  # the API's copy lost (say, a read model rebuilt from nothing)
        conn.execute(run_view.t.delete())
    assert source.handle([body]) == []  # the redelivery
    kept_runs(broker, sqlite_engine)
    shown = run_view.get_run(sqlite_engine, request.run_id)
    assert (shown["state"], shown["published"]) == ("done", 3)


# -- actions ---------------------------------------------------------------------------------------

def test_a_pending_action_reported_late_does_not_undo_its_settlement(sqlite_engine):
    assert action_view.handle(sqlite_engine, [delivered(action(1, "done"))]) == []
    assert action_view.handle(sqlite_engine, [delivered(action(1, "pending"))]) == []
    assert action_view.list_recent(sqlite_engine, {})[0][0]["state"] == "done"
    assert action_view.handle(sqlite_engine, [delivered(action(1, "done")), delivered(action(2, "failed")),
                                              delivered(action(2, "pending"))]) == []
    items, _ = action_view.list_recent(sqlite_engine, {})
    assert [(i["id"], i["state"], i["reason"]) for i in items] == [(2, "failed", "failed #2"),
                                                                   (1, "done", "done #1")]


def test_a_report_that_is_not_an_action_is_dead_lettered(sqlite_engine):
    body = encode(action(3, "done")).replace(b'"number":3', b'"number":"3"')
    bad = Delivery(body, "action", STATE_EXCHANGE, {}, False, 0)
    [rejection] = action_view.handle(sqlite_engine, [bad])
    assert "field number has type str" in rejection.reason
    assert action_view.list_recent(sqlite_engine, {}) == ([], None)


def test_a_report_outside_its_declaration_is_dead_lettered_alone(sqlite_engine):
    """A value the record's declaration refuses (an unknown state, a confidence above 1) would fail
    the table or mislead the API: that report is set aside with the field named, its batch kept."""
    strange, overconfident = delivered(action(4, "lost")), delivered(action(5, "done", confidence=1.5))
    rejections = action_view.handle(sqlite_engine, [strange, delivered(action(6, "done")), overconfident])
    assert [(r.delivery, r.reason.split(" must ")[0]) for r in rejections] == [
        (strange, "action: state"), (overconfident, "action: confidence")]
    assert [i["id"] for i in action_view.list_recent(sqlite_engine, {})[0]] == [6]


# -- the embedded mode's broker, with the API's read-model consumers ----------------------------------

def test_runs_and_actions_reach_the_api_through_the_embedded_broker(sqlite_engine, tmp_path):
    logged(sqlite_engine)
    broker = SQLiteBroker(tmp_path / "queue.db")
    views = api_service.views(sqlite_engine)
    stop = threading.Event()
    threads = runner.start([views], broker, stop)
    try:
        from services.api.routes import api_blueprint
        from shared.http import app_for

        client = app_for("wcml", [api_blueprint(sqlite_engine, KEYS, api_service.control_messages_to(broker),
                                                Known.read(None, None))], lambda: None).test_client()
        # Asked for over the API, polled at once: there, requested.
        asked = client.post("/api/v1/replays", json={"to_position": 4}, headers=AUTH)
        assert asked.status_code == 202
        run_id = asked.json["id"]
        at_once = client.get(f"/api/v1/replays/{run_id}", headers=AUTH)
        assert (at_once.status_code, at_once.json["state"]) == (200, "requested")
        [request] = broker.get(topology.REPLAYS_QUEUE.name, 10)
        assert request.routing_key == CONTROL_KEYS[ReplayRequest]
        replayer = Replayer(EventLog(sqlite_engine), broker, ReplayRuns(sqlite_engine))
        assert ReplaySource(replayer).handle([request]) == []
        broker.settle([request], requeue=False)
        assert replayer.run_requested(threading.Event()) == 1

        def replayed():
            run = client.get(f"/api/v1/replays/{run_id}", headers=AUTH).json
            assert (run["state"], run["published"], run["total"]) == ("done", 4, 4), run
            return run
        eventually(replayed, timeout=10, message="the finished run in the API")

        # The actions service, a dry run, on two confident live results.
        worker = ActionsWorker(Ledger(sqlite_engine), parse_policy(POLICY), None, to_broker(broker))
        results = [Prediction(task="issuetype", model_version="m1", delivery_id=f"p-{n}", position=n,
                              repo="webcompat/web-bugs", number=n, label="bug", confidence=0.95,
                              probabilities={"bug": 0.95}, predicted_at="2026-01-01T00:00:00Z")
                   for n in (1, 2)]
        broker.publish([Outgoing(RESULTS_EXCHANGE, p.task, encode(p), message_id=p.delivery_id)
                        for p in results])
        assert worker.handle(broker.get(topology.RESULTS_QUEUE.name, 10)) == []

        def listed():
            items = client.get("/api/v1/actions", headers=AUTH).json["items"]
            assert [(i["number"], i["state"]) for i in items] == [(2, "dry-run"), (1, "dry-run")], items
            return items
        eventually(listed, timeout=10, message="the recorded actions in the API")
        page = client.get("/", headers=AUTH).get_data(as_text=True)
        assert run_id in page and "dry run: nothing sent" in page
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        broker.close()
