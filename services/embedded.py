"""Embedded mode: every service in one process on SQLite, the in-process broker and a local directory.

The service code is the same as in the distributed mode; only the adapters differ.
Consumers run in threads, the HTTP surfaces share one Flask app behind waitress.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import Flask

from services.dispatcher.rules import load_rules, tasks_of
from services.dispatcher.worker import Dispatcher
from services.ingest.app import ingest_blueprint
from services.ingest.event_log import EventLog
from services.ingest.outbox_relay import OutboxRelay
from services.ingest.replay import Replayer
from services.ingest.replay_runs import ReplayRuns
from services.predictor.demo import ensure_demo_bundles
from services.predictor.worker import Predictor
from services.store.api import api_blueprint
from services.store.writer import PredictionWriter
from shared import settings as wcml_settings
from shared.blobs import open_blob_store
from shared.broker import topology
from shared.broker.memory import MemoryBroker
from shared.database import create_engine, migrate
from shared.http import add_health_and_metrics, json_errors
from shared.lifecycle import stop_on_signals

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPipeline:
    """All services wired together; ``start`` runs the consumers, ``app`` serves HTTP."""

    settings: wcml_settings.Settings
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self):
        s = self.settings
        migrate(s.database_url)
        self.engine = create_engine(s.database_url)
        self.broker = MemoryBroker()
        self.rules = load_rules(s.routes_file)
        self.tasks = tasks_of(self.rules)
        topology.declare(self.broker, self.tasks)
        ensure_demo_bundles(s.models_dir, self.tasks)
        self.event_log = EventLog(self.engine)
        self.relay = OutboxRelay(self.event_log, self.broker)
        self.replayer = Replayer(self.event_log, self.broker, ReplayRuns(self.engine))
        self.blobs = open_blob_store(s.blob_url)
        self.consumers = {
            topology.EVENTS_QUEUE.name: Dispatcher(self.rules, self.broker).handle,
            topology.RESULTS_QUEUE.name: PredictionWriter(self.engine, self.blobs).handle,
        }
        for task in self.tasks:
            predictor = Predictor(task, s.models_dir, self.broker)
            self.consumers[topology.task_queue(task).name] = predictor.handle

    def app(self) -> Flask:
        app = Flask("wcml")
        app.register_blueprint(ingest_blueprint(self.event_log, self.settings.webhook_secrets,
                                                self.settings.max_body_bytes, on_append=self.relay.wake))
        app.register_blueprint(api_blueprint(self.engine, self.settings.api_keys))
        add_health_and_metrics(app, self.event_log.ping)
        json_errors(app)
        return app

    def start(self) -> None:
        self._thread("relay", self.relay.run, self.stop)
        self._thread("replays", self.replayer.serve_requests, self.stop)
        for queue, handler in self.consumers.items():
            self._thread(queue, self.broker.consume, queue, handler, self.stop)

    def _thread(self, name: str, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        self.relay.wake()
        for thread in self.threads:
            thread.join(10)
        self.engine.dispose()


def serve(bind: str) -> int:
    from waitress import create_server

    host, _, port = bind.rpartition(":")
    settings = wcml_settings.load(embedded_defaults=True)
    pipeline = EmbeddedPipeline(settings)
    pipeline.start()
    server = create_server(pipeline.app(), host=host or "127.0.0.1", port=int(port), threads=8)
    stop = stop_on_signals(pipeline.stop)
    watcher = threading.Thread(target=lambda: (stop.wait(), server.close()), daemon=True)
    watcher.start()
    print(f"wcml: serving webhooks at http://{bind}/webhooks/github, the API at http://{bind}/api/v1/ "
          f"and the dashboard at http://{bind}/", flush=True)
    try:
        server.run()
    except (OSError, ValueError):
        if not stop.is_set():
            raise
    finally:
        pipeline.close()
    return 0
