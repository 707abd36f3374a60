"""Serving a service's WSGI app with gunicorn (the distributed mode), metrics shared by its workers."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable


def multiprocess_metrics() -> None:
    """Before prometheus_client is imported: gunicorn workers (and the relay) share one directory."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client imported before the multi-process directory was set")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="wcml-metrics-"))


def require_server() -> None:
    """gunicorn comes with the server extra (the embedded mode serves with waitress instead)."""
    from shared.extras import require

    require("gunicorn", "server", "the distributed mode serves HTTP with gunicorn")


def by_listener(main, metrics, metrics_port: int):
    """One WSGI app for two listeners: a request that came in on ``metrics_port`` goes to ``metrics``,
    every other to ``main``. gunicorn sets ``SERVER_PORT`` from the listening socket, not from the
    request's Host header, so no request chooses its side."""

    def app(environ, start_response):
        chosen = metrics if environ.get("SERVER_PORT") == str(metrics_port) else main
        return chosen(environ, start_response)

    return app


def listener_port(bind: str) -> int:
    return int(bind.rpartition(":")[2])


def serve(factory: Callable[[], object], bind: str, workers: int, name: str, threads: int = 1,
          metrics_bind: str = "") -> None:
    """Run ``factory()``'s app in ``workers`` processes until SIGTERM (gunicorn's graceful stop); with
    ``metrics_bind``, a second listener there serves only ``/metrics``, to anyone who reaches it
    (``shared.http.metrics_app``). It must be on another port than ``bind``."""
    require_server()
    if metrics_bind and listener_port(metrics_bind) == listener_port(bind):
        from shared.settings import SettingsError

        raise SettingsError("WCML_METRICS_BIND", f"must use another port than --bind {bind}")
    from gunicorn.app.base import BaseApplication

    from shared.metrics import worker_exited

    class App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", [bind, metrics_bind] if metrics_bind else [bind])
            self.cfg.set("workers", workers)
            if threads > 1:  # concurrent requests in a worker share commits (ingest's group commit)
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("threads", threads)
            self.cfg.set("proc_name", name)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("accesslog", None)
            self.cfg.set("child_exit", lambda _arbiter, worker: worker_exited(worker.pid))

        def load(self):
            if not metrics_bind:
                return factory()
            from shared.http import metrics_app

            return by_listener(factory(), metrics_app(), listener_port(metrics_bind))

    App().run()
