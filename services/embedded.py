"""Embedded mode: every service in one process on SQLite, queues in a SQLite file, a local directory.

The services are the distributed mode's: every entry of ``shared/topology.py`` marked ``embedded``,
built by ``bootstrap.pipeline`` with the same batch settings; only the adapters differ. Consumers
and loops run in threads, the HTTP surfaces share one Flask app behind waitress. The queues are
durable (``shared.broker.sqlite``): what was between services when the process stopped, however it
stopped, is delivered again at the next start. ``var/instance.json`` tells the ``wcml`` commands in
the same folder where it serves.
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
from shared.http import app_for
from shared.lifecycle import keep_startup_objects, stop_on_signals

log = logging.getLogger(__name__)


class EmbeddedPipeline:
    """All services wired together; ``start`` runs the consumers and loops, ``app`` serves HTTP."""

    def __init__(self, settings: wcml_settings.Settings):
        self.settings = settings
        self.adapters = bootstrap.Adapters(settings)
        recovered = getattr(self.adapters.broker, "recover", lambda: 0)()
        if recovered:
            log.info("%d message(s) taken before the last stop, not acknowledged: delivered again", recovered)
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

        return app_for("wcml", [s.blueprint() for s in self.services if s.blueprint], ping,
                       self.settings.api_keys)

    def start(self) -> None:
        self.threads = runner.start(self.services, self.broker, self.stop)

    def close(self) -> None:
        self.stop.set()
        for service in self.services:
            service.wake()
        for thread in self.threads:
            thread.join(10)
        self.adapters.close()


DRAIN_SECONDS = 10  # a request still being answered at a stop gets this long to finish


def serve(bind: str) -> int:
    """Serve until SIGTERM/SIGINT; then stop accepting first (listener closed, every connection closed
    after its current answer), give requests in flight a bounded time, stop the consumers, exit 0.
    Nothing accepted is lost meanwhile: it is in the log and the queue file for the next start.
    At first start it creates the webhook secret and API key not set in the environment (var/);
    a file already there is used as it is, never replaced."""
    from waitress import create_server

    host, _, port = bind.rpartition(":")
    settings = wcml_settings.load(embedded_defaults=True, create_secrets=True)  # the only caller that creates
    metrics_server = metrics_listener(settings.metrics_bind, bind)
    pipeline = EmbeddedPipeline(settings)
    pipeline.start()
    app, closing = pipeline.app(), threading.Event()
    keep_startup_objects()

    @app.after_request
    def close_connections_when_stopping(response):
        if closing.is_set():
            response.headers["Connection"] = "close"
        return response

    server = create_server(app, host=host or "127.0.0.1", port=int(port), threads=8)
    http = threading.Thread(target=server.run, name="http", daemon=True)
    stop = stop_on_signals(pipeline.stop)
    http.start()
    wcml_settings.instance_file(settings.var_dir).write_text(json.dumps({"url": f"http://{bind}"}) + "\n")
    print(f"wcml: serving webhooks at http://{bind}/webhooks/github, the API at http://{bind}/api/v1/ "
          f"and the dashboard at http://{bind}/"
          + (f"; /metrics without a key at http://{settings.metrics_bind}/metrics" if metrics_server else ""),
          flush=True)
    try:
        while not stop.wait(0.5) and http.is_alive():
            pass
        closing.set()
        for channel in list(server.active_channels.values()):
            if not channel.requests:  # idle keep-alive connections end now, busy ones after their answer
                channel.will_close = True
        server.pull_trigger()
        server.close()
        http.join(DRAIN_SECONDS)
    finally:
        if metrics_server is not None:
            metrics_server.close()
        pipeline.close()
    return 0


def metrics_listener(metrics_bind: str, bind: str):
    """With WCML_METRICS_BIND, a second server there answering only ``/metrics`` (to anyone who reaches
    it), in a thread of its own; None without it."""
    if not metrics_bind:
        return None
    from waitress import create_server

    from shared.http import metrics_app
    from shared.wsgi import listener_port

    if listener_port(metrics_bind) == listener_port(bind):
        raise wcml_settings.SettingsError("WCML_METRICS_BIND", f"must use another port than --bind {bind}")
    host, _, port = metrics_bind.rpartition(":")
    server = create_server(metrics_app(), host=host or "127.0.0.1", port=int(port), threads=2)
    threading.Thread(target=server.run, name="metrics-http", daemon=True).start()
    return server
