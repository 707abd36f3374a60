"""Replay on real RabbitMQ and PostgreSQL: 10,000 logged events, interrupted, resumed and run twice."""

import json
import threading

import sqlalchemy as sa

from services import cli
from services.dispatcher.worker import Dispatcher
from services.ingest.event_log import EventLog, event_log
from services.ingest.replay import Replayer
from services.ingest.replay_runs import ReplayRuns
from services.predictor.serving.bundle import list_versions
from services.predictor.serving.worker import Predictor
from services.predictor.training.demo import ensure_demo_bundles
from services.samples import issue_payload
from services.store.writer import PredictionWriter
from shared import topology
from shared.blobs import FileBlobStore
from shared.broker import ConsumeOptions
from shared.broker.rabbitmq import RabbitBroker
from shared.database import create_engine, utcnow
from shared.event_routes import load_rules
from shared.replays import LogFilter, request_for
from tests.waiting import eventually, settled

EVENTS = 10_000
TASKS = ("issuetype", "needsdiagnosis")


def log_events(engine, count: int) -> None:
    """Bulk-load the log (one transaction): what the test replays, not how ingest appends."""
    rows = [{"delivery_id": f"replay-{i}", "event": "issues", "action": "opened",
             "repo": "webcompat/web-bugs", "issue_number": i + 1, "sender": "reporter",
             "received_at": utcnow(),
             "payload": json.dumps(issue_payload(number=i + 1, sender="reporter",
                                                 title=f"site{i % 97}.example - page {i % 5} is broken")),
             "published_at": utcnow()}
            for i in range(count)]
    with engine.begin() as conn:
        conn.execute(event_log.insert(), rows)


class Consumers:
    """Dispatcher, both predictors and the store, each consuming in its own thread."""

    def __init__(self, amqp_url: str, engine, models_dir, blobs_dir):
        self.stop = threading.Event()
        self.threads = []
        rules = load_rules()
        handlers = {
            "events.dispatcher": lambda b: Dispatcher(rules, b).handle,
            "results.store": lambda b: PredictionWriter(engine, FileBlobStore(blobs_dir)).handle,
            **{f"tasks.{t}": (lambda b, t=t: Predictor(t, models_dir, b).handle) for t in TASKS},
        }
        for queue, make in handlers.items():
            broker = RabbitBroker(amqp_url)
            thread = threading.Thread(target=broker.consume, name=queue, daemon=True,
                                      args=(queue, make(broker), self.stop, ConsumeOptions(max_batch=256)))
            thread.start()
            self.threads.append(thread)

    def close(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def wait_until_drained(engine, amqp_url: str, expected_rows: int, timeout: float = 240) -> int:
    """Until the rows reach ``expected_rows`` and the pipeline has settled (nothing on a queue or at
    a consumer, so no late duplicate can still land); the rows then."""
    def stored() -> int:
        rows = count(engine, "SELECT count(*) FROM predictions")
        assert rows >= expected_rows, f"{rows} rows, expected {expected_rows}"
        return rows

    eventually(stored, timeout=timeout, interval=0.25, message="the replayed predictions")
    settled(amqp_url, engine, timeout=timeout, message="the pipeline to drain")
    return count(engine, "SELECT count(*) FROM predictions")


def test_replay_yields_one_prediction_per_event_task_model_when_interrupted_resumed_and_repeated(
        amqp_url, pg_url, tmp_path, monkeypatch, capsys):
    engine = create_engine(pg_url)
    models = tmp_path / "models"
    ensure_demo_bundles(models, TASKS, announce=lambda _: None)
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, TASKS)
    log_events(engine, EVENTS)
    event_log_ = EventLog(engine)
    runs = ReplayRuns(engine)
    replayer = Replayer(event_log_, broker, runs, rules=load_rules())  # routing itself, as deployed
    consumers = Consumers(amqp_url, engine, models, tmp_path / "blobs")
    try:
        # Run 1, interrupted after about 3,000 events, then resumed.
        first = replayer.start(request_for(LogFilter(), created_by="test"))
        assert first.total == EVENTS
        stop, published = threading.Event(), []

        def interrupt_after_3000(n):
            published.append(n)
            if sum(published) >= 3000:
                stop.set()

        paused = replayer.run(first.run_id, stop, on_progress=interrupt_after_3000)
        assert paused.state == "paused" and 3000 <= paused.published < EVENTS
        done = replayer.run(first.run_id, threading.Event())
        assert (done.state, done.published, done.last_position) == ("done", EVENTS, count(
            engine, "SELECT max(position) FROM event_log"))
        rows = wait_until_drained(engine, amqp_url, EVENTS * len(TASKS))
        assert rows == EVENTS * len(TASKS)

        # Run 2: the same slice with the same models adds nothing.
        again = replayer.start(request_for(LogFilter(), created_by="test"))
        second = replayer.run(again.run_id, threading.Event())
        assert second.state == "done" and second.published == EVENTS
        assert wait_until_drained(engine, amqp_url, rows) == rows
        distinct = "SELECT count(DISTINCT (delivery_id, task, model_version)) FROM predictions"
        assert count(engine, distinct) == rows
        assert count(engine, "SELECT count(*) FROM (SELECT delivery_id FROM predictions GROUP BY delivery_id "
                             "HAVING count(*) <> 2) odd") == 0
        assert count(engine, f"SELECT count(*) FROM predictions WHERE replay_id = '{first.run_id}'") == rows
        assert broker.queue_depth("dead") == 0

        # Run 3: a new needsdiagnosis model on the first 1,000 positions adds its rows beside the old.
        (models / "needsdiagnosis").rename(tmp_path / "old")
        ensure_demo_bundles(models, ["needsdiagnosis"], announce=lambda _: None)
        new_version = list_versions(models, "needsdiagnosis")[-1]
        for version in list_versions(tmp_path, "old"):
            (tmp_path / "old" / version).rename(models / "needsdiagnosis" / version)
        first_thousand = LogFilter(from_position=1, to_position=1000)
        third = replayer.start(request_for(first_thousand, tasks=["needsdiagnosis"],
                                           model_version=new_version, created_by="test"))
        assert replayer.run(third.run_id, threading.Event()).state == "done"
        assert wait_until_drained(engine, amqp_url, rows + 1000) == rows + 1000
        assert count(engine, f"SELECT count(*) FROM predictions WHERE model_version = '{new_version}' "
                             f"AND replay_id = '{third.run_id}' AND task = 'needsdiagnosis'") == 1000

        # Compare the two models on the replay's events, with labels known for half of them.
        old_version = next(v for v in list_versions(models, "needsdiagnosis") if v != new_version)
        truth = tmp_path / "truth.jsonl"
        rows = ({"repo": "webcompat/web-bugs", "number": n, "title": "t", "label": "needsdiagnosis"}
                for n in range(1, 501))
        truth.write_text("".join(json.dumps(row) + "\n" for row in rows))
        monkeypatch.setenv("WCML_DATABASE_URL", pg_url)
        capsys.readouterr()
        assert cli.main(["compare", third.run_id, "--task", "needsdiagnosis", "--model-a", new_version,
                         "--model-b", old_version, "--truth", str(truth), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["pairs"] == 1000 and report["model_a"]["count"] == report["model_b"]["count"] == 1000
        assert report["agreement_rate"] == 1.0  # the same demo data, the same model
        assert report["model_a"]["truth"]["evaluated"] == 500
    finally:
        consumers.close()
        broker.close()
        engine.dispose()
