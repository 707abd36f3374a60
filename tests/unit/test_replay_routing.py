"""The replay source routes what it reads itself: task messages straight to wcml.tasks, as the
dispatcher would have made them; what cannot be routed goes to the dispatcher to be dead-lettered."""

from __future__ import annotations

import json
import threading

from services.dispatcher.worker import Dispatcher
from services.ingest.event_log import EventLog, event_log
from services.ingest.replay import Replayer
from services.ingest.replay_runs import ReplayRuns
from services.samples import issue_payload
from shared import topology
from shared.broker.memory import MemoryBroker
from shared.database import utcnow
from shared.event_routes import load_rules, route
from shared.messages import EventEnvelope, TaskMessage, decode, decode_each, replace
from shared.replays import LogFilter, request_for

TASKS = ["issuetype", "needsdiagnosis"]


def logged(engine) -> None:
    rows = [{"delivery_id": f"d-{i}", "event": "issues", "action": "opened", "repo": "webcompat/web-bugs",
             "issue_number": i, "sender": "reporter", "received_at": utcnow(), "published_at": utcnow(),
             "payload": json.dumps(issue_payload(number=i, sender="reporter", title=f"site{i}.example"))}
            for i in range(1, 6)]
    no_issue = {**rows[0], "delivery_id": "d-none", "issue_number": None,
                "payload": json.dumps({"action": "opened"})}
    with engine.begin() as conn:
        conn.execute(event_log.insert(), [*rows, no_issue])


def test_replayed_events_become_the_dispatchers_task_messages(sqlite_engine):
    logged(sqlite_engine)
    broker = MemoryBroker()
    topology.declare(broker, TASKS)
    rules = load_rules()
    replayer = Replayer(EventLog(sqlite_engine), broker, ReplayRuns(sqlite_engine), rules=rules)
    run = replayer.start(request_for(LogFilter(), created_by="test", model_version="m9"))
    assert replayer.run(run.run_id, threading.Event()).state == "done"
    sent = {t: [item.message for d in broker.get(f"tasks.{t}", 100)
                for item in decode_each(d.body, TaskMessage)] for t in TASKS}
    # exactly what the dispatcher would have sent for the same replayed envelopes
    envelopes = [replace(e, replay_id=run.run_id, model_version="m9")
                 for e in EventLog(sqlite_engine).read(LogFilter(), 0, 100) if e.issue_number]
    expected = [t for e in envelopes for t in route(rules, e)]
    assert sorted(m.task_id for ms in sent.values() for m in ms) == sorted(t.task_id for t in expected)
    assert {m for ms in sent.values() for m in ms} == set(expected)
    assert len(sent["issuetype"]) == 5 and all(m.replay_id == run.run_id and m.model_version == "m9"
                                                  for ms in sent.values() for m in ms)
    [odd] = broker.get(topology.EVENTS_QUEUE.name, 100)  # the one without an issue: the long way
    envelope = decode(odd.body, EventEnvelope)
    assert envelope.delivery_id == "d-none" and odd.routing_key == "replay.issues.opened"
    [rejection] = Dispatcher(rules, broker).handle([odd])
    assert "has no issue object" in rejection.reason
