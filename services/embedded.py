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


def replay_through_instance(settings: wcml_settings.Settings, wanted: dict, *, resume: str | None = None,
                            quiet: bool = False) -> int:
    """``wcml replay`` beside an embedded instance: its in-process broker is in the serving process,
    so the run is asked of that process's API, and its progress followed there."""
    import time
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    from shared.errors import UserError

    if resume:
        raise UserError("the embedded instance runs its replays itself; ask it for a new one instead")
    if wanted.get("rate"):
        raise UserError("--rate is for distributed deployments: the embedded instance replays at its pace")
    body = {k: v for k, v in {**wanted["filters"], "tasks": list(wanted.get("tasks") or ()),
                              "model_version": wanted.get("model"), "created_by": wanted.get("created_by")
                              }.items() if v is not None}
    try:
        url = json.loads(wcml_settings.instance_file(settings.var_dir).read_text())["url"]
    except (OSError, ValueError, KeyError):
        raise UserError(f"no embedded instance serves from {settings.var_dir}/: start it with scripts/run, "
                        "then run the replay again") from None
    headers = {"Authorization": f"Bearer {settings.api_keys[0]}", "Content-Type": "application/json"}

    def call(path: str, data: dict | None = None) -> dict | None:
        request = urllib.request.Request(url + path, headers=headers, method="POST" if data else "GET",
                                         data=json.dumps(data).encode() if data else None)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and data is None:
                return None  # asked for, not yet recorded by the replay source
            raise UserError(f"the embedded instance at {url} answered {exc.code}: "
                            f"{json.loads(exc.read() or b'{}').get('error', exc.reason)}") from None
        except OSError as exc:
            raise UserError(f"the embedded instance at {url} does not answer ({exc}): is scripts/run "
                            "serving?") from None

    run = call("/api/v1/replays", body)
    print(f"replay {run['id']}: requested from the embedded instance at {url}")
    with tqdm(unit="event", desc=run["id"], disable=quiet) as bar:
        while run["state"] in ("requested", "running"):
            time.sleep(0.5)
            run = call(f"/api/v1/replays/{run['id']}") or run
            bar.total = run["total"] or None
            bar.update(run["published"] - bar.n)
    print(f"replay {run['id']}: {run['state']}, {run['published']}/{run['total']} published")
    return 0 if run["state"] == "done" else 1

