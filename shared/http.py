"""HTTP pieces every service's app shares: JSON errors, /healthz, /metrics, and every request counted
(``wcml_http_*``, by route, method and status: the 5xx rate of ingest and the api).

``/metrics`` on a service's own port answers only a key of WCML_API_KEYS with the ``metrics`` scope (or
more; ``shared.access``): the webhook port faces GitHub, and what is counted there (deliveries, queue
lengths, errors) is no one else's business. A Prometheus that cannot send a key scrapes the separate
listener of ``WCML_METRICS_BIND`` instead (``metrics_app``), which answers ``/metrics`` to anyone who
can reach it: bind it to an address only the scraper reaches. (A consumer's own metrics port,
``shared.metrics_server``, serves nothing else and is not exposed.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import orjson
import sqlalchemy as sa
from flask import Blueprint, Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider

from shared import metrics
from shared.access import ApiKeys

REQUESTS = metrics.counter("wcml_http_requests_total", "HTTP requests answered, by route, method and status",
                           ("route", "method", "status"))
REQUEST_SECONDS = metrics.histogram("wcml_http_request_duration_seconds",
                                    "Seconds from a request's start to its response, by route", ("route",),
                                    buckets=metrics.DURATION_BUCKETS)


def answer(http_status: int, **fields) -> Response:
    response = jsonify(fields)
    response.status_code = http_status
    return response


def app_for(name: str, blueprints: Sequence[Blueprint], ping: Callable[[], None],
            api_keys: Iterable[str] = ()) -> Flask:
    """One WSGI app from services' blueprints, with JSON errors, /healthz and /metrics (for ``api_keys``
    with the ``metrics`` scope; none: only on WCML_METRICS_BIND).

    JSON errors first: a blueprint's own app-wide handlers (the query API's) take precedence.
    """
    app = Flask(name)
    app.json = FastJSON(app)
    json_errors(app)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    add_health_and_metrics(app, ping, ApiKeys(api_keys))
    count_requests(app)
    app.after_request(security_headers)
    return app


def metrics_app() -> Flask:
    """What WCML_METRICS_BIND serves: ``GET /metrics`` to anyone who reaches it, nothing else."""
    app = Flask("wcml-metrics")
    json_errors(app)

    @app.get("/metrics")
    def metrics_endpoint():
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    app.after_request(security_headers)
    return app


def count_requests(app: Flask) -> None:
    """Each response counted (``REQUESTS``) and timed (``REQUEST_SECONDS``) under its route's rule, never
    the path asked for (a closed set of labels); a 500 answered by ``json_errors`` too."""

    @app.before_request
    def started():
        g.wcml_started = time.perf_counter()

    @app.after_request
    def counted(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUESTS.labels(route, request.method if request.method in _METHODS else "other",
                        str(response.status_code)).inc()
        if "wcml_started" in g:
            REQUEST_SECONDS.labels(route).observe(time.perf_counter() - g.wcml_started)
        return response


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class FastJSON(DefaultJSONProvider):
    """JSON responses encoded by orjson, in the same shape as Flask's own (sorted keys, compact, dates
    as HTTP dates by Flask's ``default``): json's encoder was a sixth of the query API's CPU, a page of
    predictions at a time. What orjson refuses (an integer past 64 bits, a key that is not a string)
    falls back to json; NaN becomes null, where json wrote the invalid ``NaN``."""

    OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE

    def response(self, *args, **kwargs) -> Response:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)  # indented for people
        try:
            body = orjson.dumps(self._prepare_response_obj(args, kwargs), default=self.default,
                                option=self.OPTIONS)
        except TypeError:
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)


# The dashboard is server-rendered HTML with inline styles and no script: nothing else may load, and
# no other site may frame it.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                           "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def add_health_and_metrics(app: Flask, ping: Callable[[], None], keys: ApiKeys | None = None) -> None:
    """/healthz (the database answers) and /metrics (a key of ``keys``: every scope includes ``metrics``;
    401 without one), for any service's app."""
    keys = keys or ApiKeys(())

    @app.get("/healthz")
    def healthz():
        try:
            ping()
        except sa.exc.SQLAlchemyError as exc:
            return answer(503, status="unavailable", error=type(exc).__name__)
        return answer(200, status="ok")

    @app.get("/metrics")
    def metrics_endpoint():
        caller = keys.caller(request.headers.get("Authorization"))
        if caller is None:
            refusal = answer(401, error="metrics need 'Authorization: Bearer <key>' (any scope), or ask "
                                        "the WCML_METRICS_BIND listener")
            refusal.headers["WWW-Authenticate"] = 'Bearer realm="wcml"'
            return refusal
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)


def json_errors(app: Flask) -> None:
    """Every error a client can cause is JSON with one line, never an HTML page or a trace."""

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_found(exc):
        response = answer(exc.code, error=exc.description.split(".")[0])
        if exc.code == 405:  # as RFC 9110 asks: the methods that would have been answered
            response.headers["Allow"] = ", ".join(sorted(getattr(exc, "valid_methods", None) or ()))
        return response

    @app.errorhandler(500)
    def server_error(exc):
        return answer(500, error="internal error")
