"""A replay asked for over the query API is a message to the replay source, which records and runs it
and reports the run back to the API's read model; one naming an unknown task or model version is
refused (400, the known ones listed) and starts nothing."""

import threading

import pytest
import sqlalchemy as sa

from services.api import run_view
from services.api.routes import create_app
from services.api.service import control_messages_to
from services.ingest.event_log import EventLog
from services.ingest.replay import Replayer, ReplaySource
from services.ingest.replay_runs import ReplayRuns, replay_runs
from services.ingest.webhook import WebhookDelivery
from shared import topology
from shared.broker import dead_letters
from shared.broker.rabbitmq import RabbitBroker
from shared.database import create_engine
from shared.event_routes import load_rules
from shared.known import Known
from shared.messages import ReplayRequest
from tests.builders import make, store
from tests.waiting import eventually

KEY = "replay-key"


class Consuming:
    """``handler`` on ``queue`` in a thread of its own until the block ends."""

    def __init__(self, broker, queue: str, handler):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=broker.consume, args=(queue, handler, self.stop))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join(10)


def test_api_asks_the_replay_source_which_runs_the_replay_and_reports(pg_url, amqp_url):
    engine = create_engine(pg_url)
    log = EventLog(engine)
    for i in range(30):
        log.append(WebhookDelivery(f"d{i}", None, "issues", "opened", "a/b", i + 1, "s", '{"issue": {}}'))
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, ["issuetype"])
    client = create_app(engine, [KEY], control_messages_to(broker), Known.read(None, None)).test_client()
    auth = {"Authorization": f"Bearer {KEY}"}

    bad = client.post("/api/v1/replays", json={"from_position": "one"}, headers=auth)
    assert bad.status_code == 400 and "from_position" in bad.json["error"]
    assert client.post("/api/v1/replays", json={}).status_code == 401
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 0  # refused requests send nothing

    queued = client.post("/api/v1/replays", json={"from_position": 11, "tasks": ["issuetype"]}, headers=auth)
    assert queued.status_code == 202 and queued.json["state"] == "requested"
    run_id = queued.json["id"]
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 1
    # Polled at once, before the replay source has even seen the request: the run is there.
    at_once = client.get(f"/api/v1/replays/{run_id}", headers=auth)
    assert at_once.status_code == 200 and at_once.json == queued.json

    def status() -> tuple:
        run = client.get(f"/api/v1/replays/{run_id}", headers=auth).json
        return run["state"], run["total"], run["published"], run["progress"]

    replayer = Replayer(log, broker, ReplayRuns(engine))
    views = Consuming(broker, topology.RUNS_VIEW_QUEUE.name, lambda batch: run_view.handle(engine, batch))
    with views, Consuming(broker, topology.REPLAYS_QUEUE.name, ReplaySource(replayer).handle):
        eventually(lambda: run_id in replayer.runs.requested(), timeout=30, message="the request recorded")
        eventually(lambda: status() == ("requested", 20, 0, 0.0), timeout=30,
                   message="the recorded run reported to the API")
        assert replayer.run_requested(threading.Event()) == 1
        eventually(lambda: status() == ("done", 20, 20, 1.0), timeout=30, message="the finished run reported")
    assert client.get(f"/api/v1/replays/{run_id}", headers=auth).json["finished_at"] is not None
    assert broker.queue_depth("events.dispatcher") == 20
    assert replayer.run_requested(threading.Event()) == 0  # nothing left queued
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 0  # the request was acknowledged
    assert broker.queue_depth(topology.RUNS_VIEW_QUEUE.name) == 0  # every report kept
    assert replayer.runs.unreported() == []
    broker.close()
    engine.dispose()


def test_a_request_the_broker_does_not_take_is_a_503_and_leaves_no_run(pg_url):
    from shared.broker import PublishError

    engine = create_engine(pg_url)

    def down(_request):
        raise PublishError("connection refused")

    client = create_app(engine, [KEY], down, Known.read(None, None)).test_client()
    auth = {"Authorization": f"Bearer {KEY}"}
    answer = client.post("/api/v1/replays", json={"tasks": ["issuetype"]}, headers=auth)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert client.get("/api/v1/replays", headers=auth).json["items"] == []
    engine.dispose()


def install(models, task: str, *versions: str) -> None:
    """Version directories as a bundle is installed: what makes one installed is its manifest."""
    for version in versions:
        (models / task / version).mkdir(parents=True)
        (models / task / version / "manifest.json").write_text("{}")


def runs(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(replay_runs)).scalar_one()


@pytest.fixture
def asked(pg_url, amqp_url, tmp_path):
    """The API over a database with issuetype predictions of it-1 and it-2, and needsdiagnosis bundles
    v1 and v2 installed where it reads them (none of issuetype)."""
    engine = create_engine(pg_url)
    store(engine, tmp_path, [make(i, task="issuetype", model_version=f"it-{1 + i % 2}") for i in range(4)])
    models = tmp_path / "models"
    install(models, "needsdiagnosis", "v1", "v2")
    (models / "needsdiagnosis" / ".tmp-v3-x").mkdir()  # a bundle being written: not installed yet
    (models / "needsdiagnosis" / "v4").mkdir()  # no manifest: not a bundle
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, ["issuetype", "needsdiagnosis"])
    client = create_app(engine, [KEY], control_messages_to(broker), Known.read(None, models)).test_client()
    yield client, engine, broker, models
    broker.close()
    engine.dispose()


INSTALLED = "known (installed in {models}/needsdiagnosis): v1, v2"
STORED = "known (with predictions; no bundle of issuetype readable here): it-1, it-2"


@pytest.mark.parametrize("body, error", [
    ({"tasks": ["nope"]}, "unknown task 'nope'; known: issuetype, needsdiagnosis"),
    ({"tasks": ["needsdiagnosis", "nope"], "model_version": "v1"},
     "unknown task 'nope'; known: issuetype, needsdiagnosis"),
    ({"tasks": ["needsdiagnosis"], "model_version": "v9"},
     f"unknown model version 'v9' for task needsdiagnosis; {INSTALLED}"),
    ({"tasks": ["needsdiagnosis"], "model_version": "v4"},
     f"unknown model version 'v4' for task needsdiagnosis; {INSTALLED}"),
    ({"tasks": ["issuetype"], "model_version": "v1"},  # no issuetype bundle here: its stored versions
     f"unknown model version 'v1' for task issuetype; {STORED}"),
    ({"model_version": "v1"},  # every routed task: v1 is needsdiagnosis' only
     f"unknown model version 'v1' for task issuetype; {STORED}"),
])
def test_a_replay_naming_an_unknown_task_or_model_is_refused_listing_the_known(asked, body, error):
    client, engine, broker, models = asked
    answer = client.post("/api/v1/replays", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert (answer.status_code, answer.json) == (400, {"error": error.format(models=models)})
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 0  # nothing asked of the replay source
    assert runs(engine) == 0


def test_a_replay_naming_known_ones_is_asked_for(asked):
    client, engine, broker, _ = asked
    auth = {"Authorization": f"Bearer {KEY}"}
    for body in ({"tasks": ["needsdiagnosis"], "model_version": "v2"}, {"tasks": ["issuetype"]},
                 {"tasks": ["issuetype"], "model_version": "it-1"}):
        answer = client.post("/api/v1/replays", json=body, headers=auth)
        assert answer.status_code == 202, answer.json
    assert broker.queue_depth(topology.REPLAYS_QUEUE.name) == 3


def test_the_list_of_known_ones_is_bounded(asked):
    client, _, _, models = asked
    install(models, "needsdiagnosis", *(f"v{n:02d}" for n in range(30)))
    answer = client.post("/api/v1/replays", json={"tasks": ["needsdiagnosis"], "model_version": "x" * 255},
                         headers={"Authorization": f"Bearer {KEY}"})
    error = answer.json["error"]
    listed = "v00, v01, v02, v03, v04, v05, v06, v07, v08, v09, v1, v10 and 20 more"  # sorted, 12 of 32
    assert answer.status_code == 400 and error.endswith(listed)
    assert f"'{'x' * 64}'" in error and len(error) < 400 + len(str(models)) and "\n" not in error


def test_the_replay_source_refuses_a_request_naming_a_task_its_rules_do_not_route(pg_url, amqp_url):
    """A request that did not come through the API's check (an older API, a hand-sent message): dead-
    lettered with its reason, and the run reported failed with it."""
    engine = create_engine(pg_url)
    broker = RabbitBroker(amqp_url)
    topology.declare(broker, ["issuetype", "needsdiagnosis"])
    send = control_messages_to(broker)
    send(ReplayRequest(run_id="r-nope", filters={}, tasks=["nope"], model_version=None, created_by="x",
                       requested_at="2026-01-01T00:00:00+00:00"))
    replayer = Replayer(EventLog(engine), broker, ReplayRuns(engine), rules=load_rules())
    with Consuming(broker, topology.REPLAYS_QUEUE.name, ReplaySource(replayer).handle):
        eventually(lambda: broker.queue_depth(topology.DEAD_QUEUE.name) == 1, timeout=30,
                   message="the request dead-lettered")
    [dead] = dead_letters.listing(broker, 10)
    reason = "unknown task 'nope'; known: issuetype, needsdiagnosis"
    assert dead["reason"] == reason
    assert runs(engine) == 0 and replayer.run_requested(threading.Event()) == 0
    with Consuming(broker, topology.RUNS_VIEW_QUEUE.name, lambda batch: run_view.handle(engine, batch)):
        eventually(lambda: run_view.get_run(engine, "r-nope") is not None, timeout=30,
                   message="the refusal reported")
    refused = run_view.get_run(engine, "r-nope")
    assert (refused["state"], refused["error"], refused["tasks"]) == ("failed", reason, ["nope"])
    broker.close()
    engine.dispose()


def test_wcml_replay_naming_an_unknown_task_or_model_stops_with_one_line(pg_url, amqp_url, tmp_path,
                                                                          monkeypatch, capsys):
    from services import cli

    engine, broker = create_engine(pg_url), RabbitBroker(amqp_url)
    topology.declare(broker, ["issuetype", "needsdiagnosis"])  # as the running pipeline has
    install(tmp_path, "needsdiagnosis", "v1")
    for name, value in (("BROKER_URL", amqp_url), ("DATABASE_URL", pg_url), ("MODELS_DIR", str(tmp_path))):
        monkeypatch.setenv(f"WCML_{name}", value)
    monkeypatch.setattr(cli.wcml_log, "setup", lambda *_: None)
    for args, error in (
        (["--task", "nope"], "unknown task 'nope'; known: issuetype, needsdiagnosis"),
        (["--task", "needsdiagnosis", "--model", "v9"],
         f"unknown model version 'v9' for task needsdiagnosis; known (installed in {tmp_path}/"
         "needsdiagnosis): v1"),
        (["--model", "v1"],  # every routed task; no issuetype bundle here and none of its predictions stored
         "unknown model version 'v1' for task issuetype; known (with predictions; no bundle of issuetype "
         "readable here): none"),
    ):
        assert cli.main(["replay", "--quiet", *args]) == 2
        out = capsys.readouterr()
        assert (out.out, out.err) == ("", f"wcml replay: {error}\n")
    assert runs(engine) == 0
    assert all(broker.queue_depth(f"tasks.{t}") == 0 for t in ("issuetype", "needsdiagnosis"))
    broker.close()
    engine.dispose()
