"""Embedded mode: every service in one process on SQLite, the in-process broker and a local directory.

The services are the distributed mode's, built from the same declarations (``bootstrap.pipeline``)
with the same batch settings; only the adapters differ. Consumers and loops run in threads, the
HTTP surfaces share one Flask app behind waitress. ``var/instance.json`` tells the ``wcml``
commands run in the same folder where this instance serves.
"""

from __future__ import annotations

import json
import logging
import threading

from flask import Flask

from services import bootstrap
from services.predictor.training.demo import ensure_demo_bundles
from shared import service as runner
from shared import settings as wcml_settings
from shared.broker.memory import MemoryBroker
from shared.http import app_for
from shared.lifecycle import stop_on_signals

log = logging.getLogger(__name__)


class EmbeddedPipeline:
    """All services wired together; ``start`` runs the consumers and loops, ``app`` serves HTTP."""

    def __init__(self, settings: wcml_settings.Settings):
        self.settings = settings
        self.adapters = bootstrap.Adapters(settings, broker=MemoryBroker())
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        ensure_demo_bundles(settings.models_dir, bootstrap.routed_tasks(self.adapters))
        self.services = bootstrap.pipeline(self.adapters)

    @property
    def broker(self):
        return self.adapters.broker

    @property
    def engine(self):
        return self.adapters.engine

    def app(self) -> Flask:
        def ping() -> None:
            for service in self.services:
                if service.ping is not None:
                    service.ping()

        return app_for("wcml", [s.blueprint() for s in self.services if s.blueprint], ping)

    def start(self) -> None:
        self.threads = runner.start(self.services, self.broker, self.stop)

    def close(self) -> None:
        self.stop.set()
        for service in self.services:
            service.wake()
        for thread in self.threads:
            thread.join(10)
        self.adapters.close()


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
    wcml_settings.instance_file(settings.var_dir).write_text(json.dumps({"url": f"http://{bind}"}) + "\n")
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

