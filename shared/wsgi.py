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


def serve(factory: Callable[[], object], bind: str, workers: int, name: str, threads: int = 1) -> None:
    """Run ``factory()``'s app in ``workers`` processes until SIGTERM (gunicorn's graceful stop)."""
    require_server()
    from gunicorn.app.base import BaseApplication

    from shared.metrics import worker_exited

    class App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            if threads > 1:  # concurrent requests in a worker share commits (ingest's group commit)
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("threads", threads)
            self.cfg.set("proc_name", name)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("accesslog", None)
            self.cfg.set("child_exit", lambda _arbiter, worker: worker_exited(worker.pid))

        def load(self):
            return factory()

    App().run()
