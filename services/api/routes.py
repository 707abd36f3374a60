"""HTTP entry points of the store: the query API, its OpenAPI document and the dashboard.

Routes only parse the request, call ``queries`` and shape the answer. ``api_blueprint``
is what the embedded mode mounts beside ingest; ``create_app`` adds the process-level
``/healthz`` and ``/metrics`` for ``wcml api``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from flask import Blueprint, Flask, Response, jsonify, redirect, request
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from services.api import action_view, api_docs, dashboard, queries
from services.api.auth import ApiKeys, Caller
from services.api.dashboard_access import LOGIN_PATH, add_login, caller_of
from services.api.filters import CONTROL, FilterError, Filters
from services.api.openapi import openapi_document
from services.api.rate_limit import RateLimit, TokenBuckets
from services.api.replay_requests import SendRequest
from services.api.sessions import Sessions
from shared.actions import ActionQueryError
from shared.broker import PublishError
from shared.database import ping
from shared.http import app_for
from shared.issues import valid_repo
from shared.known import Known
from shared.messages import ScoreRequest
from shared.times import iso, utcnow

log = logging.getLogger(__name__)

PAGING_PARAMS = ("cursor", "limit", "after")
COMPARISON_PARAMS = ("task", "model_a", "model_b")
MAX_ISSUE = 2**31 - 1
READING = ("GET", "HEAD", "OPTIONS")  # every other /api/ method changes something: it needs `operate`
PUBLIC = ("openapi", "login_form", "login", "logout", "docs", "docs_asset")  # no key needed


def _error(status: int, message: str, **headers: str) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error=message), status, headers


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _once() -> None:
    repeated = next((k for k in request.args if len(request.args.getlist(k)) > 1), None)
    if repeated:
        raise FilterError(f"give {repeated!r} once")


def _only(*names: str) -> None:
    """400 for a parameter given twice or one this route does not know."""
    _once()
    unknown = sorted(set(request.args) - set(names))
    if unknown:
        known = ", ".join(names) or "none"
        raise FilterError(f"unknown parameter {unknown[0][:40]!r}; this route takes {known}")


def api_blueprint(engine: Engine, api_keys: Sequence[str], send_request: SendRequest,
                  known: Known, rate_limit: RateLimit | None = None) -> Blueprint:
    """``send_request`` hands a checked request upstream (a replay, an issue to score now) to the broker;
    a replay request may name only the tasks and model versions ``known`` lists (``shared.known``).

    Every /api/ request needs a key (401) with the scope its method needs (403: ``read`` for GET,
    ``operate`` for the rest); the dashboard needs a session (``/login``) or a key with ``read``. Each
    key gets ``rate_limit`` (429 with ``Retry-After`` past it; None: no limit)."""
    keys = ApiKeys(api_keys)  # digests only from here on
    if not len(keys):
        log.warning("no API keys configured: every /api/ request will be refused")
    sessions, buckets = Sessions(keys.session_secret()), TokenBuckets(rate_limit or RateLimit())
    bp = Blueprint("store", __name__, template_folder="templates")
    add_login(bp, keys, sessions)

    def refused(status: int, message: str, **headers: str):
        if _is_api():
            return _error(status, message, **headers)
        return Response(message + "\n", status, headers=headers, mimetype="text/plain")

    def within(caller: Caller, scope: str):
        """None when ``caller`` has ``scope`` and a token of its rate; else the refusal."""
        if not caller.may(scope):
            asked = f"{request.method} {request.path[:100]}"
            return refused(403, f"this key lacks the '{scope}' scope that {asked} needs "
                                f"(it has '{caller.scope}')")
        wait = buckets.take(caller.key_id)
        if wait:
            return refused(429, f"over this key's rate of {buckets.limit.rate:g} requests a second: "
                                f"try again in {wait} s", **{"Retry-After": str(wait)})
        return None

    @bp.before_request
    def check_access():
        if request.endpoint and request.endpoint.rpartition(".")[2] in PUBLIC:
            return None
        if _is_api():
            caller = keys.caller(request.headers.get("Authorization"))
            if caller is None:
                return _error(401, "missing or unknown API key: send 'Authorization: Bearer <key>'",
                              **{"WWW-Authenticate": 'Bearer realm="wcml"'})
            return within(caller, "read" if request.method in READING else "operate")
        caller = caller_of(keys, sessions)
        if caller is None:
            return redirect(LOGIN_PATH.lstrip("/"), 303)
        return within(caller, "read")

    @bp.get("/api/v1/predictions")
    def list_predictions():
        _once()
        filters = Filters.parse(request.args, ignore=PAGING_PARAMS)
        page = queries.list_predictions(engine, filters, request.args.get("cursor"),
                                        request.args.get("limit"), request.args.get("after"))
        return jsonify(items=page.items, next_cursor=page.next_cursor)

    @bp.get("/api/v1/issues/<owner>/<repo>/<int:number>")
    def issue(owner: str, repo: str, number: int):
        _only()
        storable = valid_repo(f"{owner}/{repo}") and 1 <= number <= MAX_ISSUE  # else there is none
        latest = queries.latest_for_issue(engine, f"{owner}/{repo}", number) if storable else None
        if not latest:
            return _error(404, f"no predictions for {owner[:100]}/{repo[:100]}#{number}")
        return jsonify(repo=f"{owner}/{repo}", number=number, predictions=latest)

    @bp.get("/api/v1/actions")
    def list_actions():
        _once()
        try:
            items, next_cursor = action_view.list_recent(engine, request.args.to_dict())
        except ActionQueryError as exc:
            raise FilterError(str(exc)) from None
        return jsonify(items=items, next_cursor=next_cursor)

    @bp.post("/api/v1/issues/<owner>/<repo>/<int:number>/score")
    def score_now(owner: str, repo: str, number: int):
        _only()
        name = f"{owner}/{repo}"
        if not valid_repo(name) or not 1 <= number <= MAX_ISSUE:  # as for reading: no such issue
            return _error(404, f"no issue {owner[:100]}/{repo[:100]}#{number} can exist")
        request_id = f"s-{uuid.uuid4().hex[:12]}"
        send_request(ScoreRequest(request_id, name, number, "api", iso(utcnow())))
        return jsonify(request_id=request_id, repo=name, number=number,
                       predictions=f"/api/v1/issues/{name}/{number}"), 202

    @bp.get("/api/v1/models")
    def models():
        _only()
        return jsonify(items=queries.model_versions(engine))

    def _run(replay_id: str) -> dict | None:
        if len(replay_id) > 64 or CONTROL.search(replay_id):  # no such id can be stored
            return None
        return queries.get_run(engine, replay_id)

    @bp.get("/api/v1/replays")
    def replays():
        _only("limit")
        return jsonify(items=queries.list_runs(engine, request.args.get("limit")))

    @bp.post("/api/v1/replays")
    def request_replay():
        _only()
        run = queries.request_run(engine, send_request, request.get_json(silent=True), requested_by="api",
                                  known=known)
        return jsonify(run), 202

    @bp.get("/api/v1/replays/<replay_id>")
    def replay(replay_id: str):
        _only()
        run = _run(replay_id)
        if run is None:
            return _error(404, f"no replay run {replay_id[:80]!r}")
        return jsonify(run)

    @bp.get("/api/v1/replays/<replay_id>/comparison")
    def comparison(replay_id: str):
        _only(*COMPARISON_PARAMS)
        params = {k: request.args.get(k, "") for k in COMPARISON_PARAMS}
        queries.check_comparison(**params)  # a bad request is a 400 even for an unknown run,
        queries.check_stored(engine, **params)  # and so is a name that has no predictions
        run = _run(replay_id)
        if run is None:
            return _error(404, f"no replay run {replay_id[:80]!r}")
        return jsonify(replay=run, **queries.compare_models(engine, replay_id, **params))

    @bp.get("/openapi.json")
    def openapi():
        return jsonify(openapi_document())

    @bp.get("/")
    def index():
        csrf = sessions.read(request).get("csrf") if caller_of(keys, sessions) else None
        html, status = dashboard.render(engine, request.args, csrf=csrf if isinstance(csrf, str) else None)
        response = Response(html, status=status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    api_docs.add_routes(bp)

    @bp.errorhandler(FilterError)
    def bad_filter(exc: FilterError):
        return _error(400, str(exc))

    @bp.errorhandler(PublishError)
    def broker_down(exc: PublishError):
        log.error("broker unavailable: %s", exc.__class__.__name__)
        return _error(503, "broker unavailable, the replay was not requested: try again shortly",
                      **{"Retry-After": "5"})

    @bp.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        log.error("database unavailable: %s", exc.__class__.__name__)
        if _is_api():
            return _error(503, "database unavailable, try again shortly", **{"Retry-After": "5"})
        return Response("database unavailable, try again shortly\n", 503, mimetype="text/plain")

    # Routing errors (unknown path, wrong method) happen before a blueprint is chosen, so these
    # are app-wide; outside /api/ they give the app's usual answer back.
    def json_for_api(exc: HTTPException):
        if not _is_api():
            return exc
        if exc.code == 405:
            allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or ()))
            return _error(405, f"method {request.method} not allowed here", Allow=allowed)
        if exc.code == 404:
            return _error(404, f"no API route {request.path[:200]}")
        return _error(500, "internal error")

    for code in (404, 405, 500):
        bp.app_errorhandler(code)(json_for_api)
    return bp


def create_app(engine: Engine, api_keys: Sequence[str], send_request: SendRequest, known: Known,
               rate_limit: RateLimit | None = None) -> Flask:
    """The API on its own: the blueprint plus /healthz and /metrics (with a key of scope ``metrics``)."""
    return app_for("wcml-api", [api_blueprint(engine, api_keys, send_request, known, rate_limit)],
                   lambda: ping(engine), api_keys=api_keys)
