"""Distributed mode: one declared service a process (``wcml <name>``), until SIGTERM.

A consumer runs its consumers and loops (``shared.service.run``) and, at SIGTERM, finishes its
current batch and exits 0; an HTTP service runs its blueprint under gunicorn. A service whose entry
names another ``beside`` it (ingest: the relay; store: its latest-documents follower) starts that
one's command as a child process once it has built itself (and so migrated the database), and stops
it when it stops.

Each process serves its own ``/metrics`` and ``/healthz``: an HTTP service on its HTTP port (its
gunicorn workers' metrics summed in one multi-process directory), any other on the metrics port its
entry declares (``shared.metrics_server``), from once it has built itself (a predictor: loaded its
model) until it stops. A process started beside another gets its own: it does not inherit the
multi-process directory, so no counter is served twice.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable

from services.bootstrap import Adapters, build
from shared import health, metrics_server
from shared import service as runner
from shared.lifecycle import keep_startup_objects, stop_on_signals
from shared.service import Service
from shared.topology import DATABASE, ServiceSpec


def run(spec: ServiceSpec, a: Adapters, *, task: str | None = None, options: dict | None = None,
        beside: bool = True, bind: str = "", workers: int = 1, threads: int = 1,
        metrics_port: int | None = None) -> int:
    """``spec``'s process (``task``'s instance, for a service run per task), ``options`` given to its
    builder; with ``beside``, the service its entry names beside it. ``bind``, ``workers`` and
    ``threads`` serve an HTTP service. For an HTTP service, the caller has set up multi-process
    metrics (``shared.wsgi.multiprocess_metrics``) first; any other serves /metrics and /healthz on
    ``metrics_port`` (None or 0: not at all)."""
    companion = spec.beside if beside else None

    def built(adapters: Adapters) -> Service:
        return build(spec, adapters, task, **(options or {}))

    if spec.http:
        return serve_http(a, spec, built, bind=bind, workers=workers, threads=threads, companion=companion)
    service = built(a)  # a failure to build (no model installed, say) is said before anything serves
    with metrics_server.serving(metrics_port, lambda: health.probe(a.settings)), beside_process(companion):
        return consume(a, service)


def consume(a: Adapters, *services: Service) -> int:
    """A consumer process: run until SIGTERM, finish the current batch, exit."""
    try:
        return runner.run(services, a.broker, stop_on_signals())
    finally:
        a.close()


def serve_http(a: Adapters, spec: ServiceSpec, build_service: Callable[[Adapters], Service], *, bind: str,
               workers: int, threads: int = 1, companion: str | None = None) -> int:
    """The service's blueprint under gunicorn, ``companion`` beside it."""
    from shared import wsgi
    from shared.http import app_for

    wsgi.require_server()  # before anything starts beside it
    if DATABASE in spec.needs:
        a.migrated_engine  # noqa: B018 - once, before the workers start

    def app():  # in each worker, after the fork: adapters of its own
        service = build_service(Adapters(a.settings))
        built = app_for(f"wcml-{service.name}", [service.blueprint()], service.ping, a.settings.api_keys)
        keep_startup_objects()
        return built

    with beside_process(companion):
        wsgi.serve(app, bind, workers, f"wcml-{spec.name}", threads=threads,
                   metrics_bind=a.settings.metrics_bind)
    return 0


@contextlib.contextmanager
def beside_process(command: str | None):
    """``wcml <command>`` as a child process while the block runs; stopped (SIGTERM, then SIGKILL after
    30 s: it resumes where it was) when the block ends."""
    # Its own metrics: not the parent's multi-process directory (shared.wsgi), its own port instead.
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    child = subprocess.Popen([sys.executable, "-m", "services.cli", command], env=env) if command else None
    try:
        yield child
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
