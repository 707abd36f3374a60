"""A process's own ``/metrics`` and ``/healthz`` on a port of its own (the distributed mode's consumers).

An HTTP service (ingest, api) serves both on its HTTP port (``shared.http``); every other process of
the distributed mode (``wcml relay``, ``dispatcher``, ``predictor``, ``store``, ``latest``,
``actions``, ``api-views``) starts this small threaded server beside its consumers, on the port its
entry in ``shared/topology.py`` declares (``metrics``), so Prometheus scrapes each process where it
runs. The embedded mode has one endpoint, its app's.

- ``GET /metrics``: this process's registry (``shared.metrics.render``), Prometheus' text format;
- ``GET /healthz``: 200 ``{"status": "ok"}`` when ``ping`` returns, else 503 with the error's type
  (what ``wcml healthcheck`` checks, so a probe may ask ``wcml healthcheck --url`` of this port);
- anything else: 404.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from shared.errors import UserError

log = logging.getLogger(__name__)

ALL_INTERFACES = "0.0.0.0"  # as an exporter listens: the scraper is another host (pod, container)


class PortInUse(UserError):
    """The port this process was to serve its metrics on is taken: one line naming it."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never holds up the process's exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # a scrape every few seconds is not worth a log line


def app(ping: Callable[[], None]) -> Callable:
    """The WSGI app: /metrics and /healthz, 404 for the rest."""
    from shared import metrics

    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body, content_type = metrics.render()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/healthz":
            try:
                ping()
                status, answer = "200 OK", {"status": "ok"}
            except Exception as exc:  # noqa: BLE001 - whatever does not answer is "unavailable"
                status, answer = "503 Service Unavailable", {"status": "unavailable",
                                                             "error": type(exc).__name__}
        else:
            status, answer = "404 Not Found", {"error": "not found"}
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return wsgi


@contextmanager
def serving(port: int | None, ping: Callable[[], None], host: str = ALL_INTERFACES) -> Iterator[int | None]:
    """Serve /metrics and /healthz on ``port`` while the block runs; yields the port bound (None: not
    served, as ``port`` None or 0 asks). A port already taken stops the process (``PortInUse``): a
    process no one can scrape would look down."""
    if not port:
        yield None
        return
    try:
        server = make_server(host, port, app(ping), server_class=_ThreadingServer,
                             handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"metrics port {port} is in use: give this process another "
                            "(--metrics-port, or its WCML_<SERVICE>_METRICS_PORT)") from None
        raise
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                              name="metrics-http", daemon=True)
    thread.start()
    log.info("serving /metrics and /healthz on %s:%d", host, port)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
