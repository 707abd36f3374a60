"""The query API's OpenAPI 3.0 document, written by hand to say exactly what ``routes.py`` does; the
Prediction, Action and ReplayRun schemas are derived from their records' declarations
(``shared.predictions``, ``shared.messages.ActionRecord``, ``shared.replays.SHOWN_SCHEMA``).

tests/integration/test_store_api.py checks it against the routes and validates real
responses with it, so a change on one side without the other fails a test.
"""

from __future__ import annotations

from typing import Any

from services.api.filters import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT
from shared import actions, records, replays
from shared.messages import ActionRecord
from shared.predictions import StoredPrediction

_ERROR = {"$ref": "#/components/schemas/Error"}


_SHORT_NAME = {"type": "string", "pattern": "^[A-Za-z0-9._:+@=/-]{1,255}$"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter; sent empty (as an HTML form does) it is as if absent."""
    return {"name": name, "in": "query", "required": False, "allowEmptyValue": True, "schema": schema,
            "description": description}


_TEXT = {"type": "string", "maxLength": 64, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}  # no control characters
_NAME = {**_TEXT, "minLength": 1}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_WS = r"[^\S\x00-\x1f\x7f]*"  # what strip() removes, less the control characters refused before it
_REPO = rf"^{_WS}([A-Za-z0-9][A-Za-z0-9-]{{0,99}}/[A-Za-z0-9_.-]{{1,100}})?{_WS}$"
# ISO 8601 date or date-time as Python reads it; " hh:mm" for "+hh:mm" is what an unescaped "+" becomes.
_DAY, _TIME = r"\d{4}-\d{2}-\d{2}", r"[T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,6})?)?"
_ZONE = r"(Z|[+-]\d{2}(:?\d{2})?| \d{2}:\d{2})"
_WHEN = {"type": "string", "example": "2024-05-01T00:00:00Z",
         "pattern": rf"^{_WS}({_DAY}([T ]\d{{2}}|{_TIME}{_ZONE}?)?){_WS}$"}
_NULL_UNIT = {"type": "number", "minimum": 0, "maximum": 1, "nullable": True}

PREDICTION_FILTERS = [
    _query("repo", {"type": "string", "pattern": _REPO, "example": "webcompat/web-bugs"},
           "Repository, owner/name."),
    _query("issue", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "Issue number."),
    _query("task", _TEXT, "Task name, e.g. needsdiagnosis."),
    _query("model", _TEXT, "Model version."),
    _query("label", _TEXT, "Predicted label."),
    _query("min_confidence", _UNIT, "Confidence at least this (inclusive)."),
    _query("max_confidence", _UNIT, "Confidence at most this (inclusive)."),
    _query("since", _WHEN, "predicted_at at or after this ISO 8601 date or date-time (UTC if naive)."),
    _query("until", _WHEN, "predicted_at before this ISO 8601 date or date-time (UTC if naive)."),
    _query("replay", _TEXT, "A replay id; `none` for the live record only, `any` for replayed ones only."),
]
PAGING = [
    _query("cursor", {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
           "`next_cursor` of the previous page (opaque); a cursor this API did not issue is a 400."),
    _query("limit", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                               {"type": "string", "maxLength": 0}], "default": DEFAULT_LIMIT},
           "Page size; empty (as an HTML form sends it) means the default."),
]

FEED = _query("after", {"type": "integer", "minimum": 0, "maximum": MAX_ID},
              "Follow the feed: the predictions stored after this id, oldest first (ids are visible in "
              "the order they are given, so none is ever passed); read on with the last item's id. Not "
              "with `cursor`.")

ACTION_FILTERS = [
    _query("repo", {**_TEXT, "maxLength": 255, "example": "webcompat/web-bugs"},
           "Repository, owner/name (exactly)."),
    _query("issue", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "Issue number."),
    _query("task", _TEXT, "Task name, e.g. issuetype."),
    *(_query(name, {"type": "string", "enum": list(values)}, f"Only {name}s {', '.join(values)}.")
      for name, values in (("action", actions.KINDS), ("state", actions.STATES), ("mode", actions.MODES))),
    _query("cursor", {"type": "string", "pattern": "^([1-9][0-9]{0,17})?$"},
           "`next_cursor` of the previous page."),
    _query("limit", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": actions.MAX_LIMIT},
                               {"type": "string", "maxLength": 0}], "default": actions.DEFAULT_LIMIT},
           "Page size; empty means the default."),
]

_ISSUE_PATH = [
    {"name": "owner", "in": "path", "required": True, "schema": {"type": "string"}, "example": "webcompat"},
    {"name": "repo", "in": "path", "required": True, "schema": {"type": "string"}, "example": "web-bugs"},
    {"name": "number", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0},
     "example": 1}]

_REPLAY_ID = {"name": "replay_id", "in": "path", "required": True, "schema": {"type": "string"},
              "example": "r-1"}

_SCHEMAS = {
    "Error": {"type": "object", "additionalProperties": False, "required": ["error"],
              "properties": {"error": {"type": "string", "description": "One line."}}},
    "Prediction": records.schema_of(StoredPrediction),  # derived from its declaration
    "PredictionPage": {
        "type": "object", "additionalProperties": False, "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref("Prediction")},
                       "next_cursor": {"type": "string", "nullable": True,
                                       "description": "Null on the last page."}}},
    "Action": records.schema_of(ActionRecord),  # derived from its declaration
    "ScoreRequested": {
        "type": "object", "additionalProperties": False,
        "required": ["request_id", "repo", "number", "predictions"],
        "properties": {"request_id": {"type": "string"}, "repo": {"type": "string"},
                       "number": {"type": "integer"},
                       "predictions": {"type": "string", "description": "Where its predictions will be."}}},
    "ActionPage": {
        "type": "object", "additionalProperties": False, "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref("Action")},
                       "next_cursor": {"type": "string", "nullable": True,
                                       "description": "Null on the last page."}}},
    "IssuePredictions": {
        "type": "object", "additionalProperties": False, "required": ["repo", "number", "predictions"],
        "properties": {"repo": {"type": "string"}, "number": {"type": "integer"},
                       "predictions": {"type": "object", "additionalProperties": _ref("Prediction"),
                                       "description": "Per task: live before replayed, then the "
                                                      "highest event position, then the newest row."}}},
    "ModelVersion": {
        "type": "object", "additionalProperties": False,
        "required": ["task", "model_version", "count", "live_count", "first_predicted_at",
                     "last_predicted_at"],
        "properties": {"task": {"type": "string"}, "model_version": {"type": "string"},
                       "count": {"type": "integer"}, "live_count": {"type": "integer"},
                       "first_predicted_at": {"type": "string", "format": "date-time"},
                       "last_predicted_at": {"type": "string", "format": "date-time"}}},
    "ModelList": {"type": "object", "additionalProperties": False, "required": ["items"],
                  "properties": {"items": {"type": "array", "items": _ref("ModelVersion")}}},
    "ReplayRun": replays.SHOWN_SCHEMA,  # derived from its declaration, and its progress
    "ReplayRequest": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "from_position": {"type": "integer", "minimum": 1, "maximum": 2**62},
            "to_position": {"type": "integer", "minimum": 1, "maximum": 2**62},
            "since": {"type": "string", "format": "date-time"},
            "until": {"type": "string", "format": "date-time"},
            **{k: _SHORT_NAME for k in ("repo", "event", "action", "created_by")},
            "model_version": {**_SHORT_NAME, "description": "Score with this version instead of each task's "
                              "default: one installed for every task replayed (where the API reads no bundle "
                              "of a task, one with predictions of it)."},
            "tasks": {"type": "array", "items": _SHORT_NAME,
                      "description": "Tasks the routing rules route to (none: every routed task)."}}},
    "ReplayList": {"type": "object", "additionalProperties": False, "required": ["items"],
                   "properties": {"items": {"type": "array", "items": _ref("ReplayRun")}}},
    "TruthScores": {
        "type": "object", "additionalProperties": False, "nullable": True,
        "required": ["evaluated", "accuracy", "macro_precision", "macro_recall", "labels"],
        "description": "Only where known labels were supplied (library call); null in the API.",
        "properties": {
            "evaluated": {"type": "integer"}, "accuracy": _NULL_UNIT, "macro_precision": _NULL_UNIT,
            "macro_recall": _NULL_UNIT,
            "labels": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": False,
                "required": ["precision", "recall", "support"],
                "properties": {"precision": _NULL_UNIT, "recall": _NULL_UNIT,
                               "support": {"type": "integer"}}}}}},
    "ModelScores": {
        "type": "object", "additionalProperties": False,
        "required": ["model_version", "count", "labels", "truth"],
        "properties": {"model_version": {"type": "string"},
                       "count": {"type": "integer", "description": "Predictions of this model in scope."},
                       "labels": {"type": "object", "additionalProperties": {"type": "integer"},
                                  "description": "Predictions per label."},
                       "truth": _ref("TruthScores")}},
    "Comparison": {
        "type": "object", "additionalProperties": False,
        "required": ["replay", "task", "replay_id", "model_a", "model_b", "pairs", "agreements",
                     "agreement_rate", "pair_labels"],
        "properties": {
            "replay": _ref("ReplayRun"),
            "task": {"type": "string"}, "replay_id": {"type": "string", "nullable": True},
            "model_a": _ref("ModelScores"), "model_b": _ref("ModelScores"),
            "pairs": {"type": "integer", "description": "Events (delivery id, task) both models scored."},
            "agreements": {"type": "integer", "description": "Pairs with the same label."},
            "agreement_rate": {**_NULL_UNIT, "description": "agreements / pairs; null without pairs."},
            "pair_labels": {"type": "array", "description": "Pairs per (label of A, label of B).",
                            "items": {"type": "object", "additionalProperties": False,
                                      "required": ["label_a", "label_b", "count"],
                                      "properties": {"label_a": {"type": "string"},
                                                     "label_b": {"type": "string"},
                                                     "count": {"type": "integer"}}}}}},
    "Health": {"type": "object", "additionalProperties": False, "required": ["status"],
               "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                              "error": {"type": "string"}}},
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                 "schema": {"type": "integer", "minimum": 1}}}
_TEXT_PAGE = {"text/plain": {"schema": {"type": "string"}}}
_HTML_PAGE = {"text/html": {"schema": {"type": "string"}}}
_RESPONSES = {
    "BadRequest": _json(_ERROR, "A parameter is not valid; the error names it."),
    "Unavailable": {**_json(_ERROR, "The database (or, for a request upstream, the broker) does not answer; "
                                    "try again after Retry-After seconds."), "headers": _RETRY_AFTER},
    "Unauthorized": {**_json(_ERROR, "No API key, or not a known one."), "headers": {
        "WWW-Authenticate": {"description": "`Bearer realm=\"wcml\"`.", "schema": {"type": "string"}}}},
    "Forbidden": _json(_ERROR, "The key lacks the scope this operation needs (`read` for GET, `operate` for "
                               "the rest); the error names it."),
    "TooManyRequests": {**_json(_ERROR, "Over this key's rate (WCML_API_RATE a second, bursts of "
                                        "WCML_API_BURST); try again after Retry-After seconds."),
                        "headers": _RETRY_AFTER},
    "NotFound": _json(_ERROR, "Nothing here."),
}
_R = {code: {"$ref": f"#/components/responses/{name}"}
      for code, name in (("400", "BadRequest"), ("401", "Unauthorized"), ("404", "NotFound"))}
_PREDICTION_400 = _json(_ERROR, "A parameter is not valid, or two are at odds (min_confidence above "
                                "max_confidence, since later than until), or the cursor is not one this API "
                                "issued; the error names it.")
_UNKNOWN_NAME = _json(_ERROR, "A parameter is not valid, or names a task or model version that is not known: "
                      "the error names it and lists the known ones (at most 12); nothing was started.")
_COMPARISON_400 = _json(_ERROR, "A parameter is not valid, model_a is model_b, or it names a task or model "
                        "version with no stored predictions: the error names it and lists the known ones.")
_PUBLIC: list[dict[str, list]] = []
_READ_THE_RUN = {"operationId": "replayRun", "parameters": {"replay_id": "$response.body#/id"},
                 "description": "Readable at once, in state `requested` or later."}
_FORM = {"type": "object", "required": ["key", "csrf"],
         "properties": {"key": {"type": "string", "description": "An API key with the `read` scope or more."},
                        "csrf": {"type": "string", "description": "The token the login form carries."}}}


def openapi_document() -> dict[str, Any]:
    document = _document()
    for path, operations in document["paths"].items():
        if path.startswith("/api/"):  # every API answer may also be "the database (or broker) is down",
            for operation in operations.values():  # "this key may not", and "this key, slow down"
                operation["responses"]["403"] = {"$ref": "#/components/responses/Forbidden"}
                operation["responses"]["429"] = {"$ref": "#/components/responses/TooManyRequests"}
                operation["responses"]["503"] = {"$ref": "#/components/responses/Unavailable"}
    return document


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "webcompat-ml query API", "version": "1",
                 "description": "Predictions stored by the webcompat-ml pipeline. Every /api/ "
                                "operation needs `Authorization: Bearer <API key>`: GET a key with the "
                                "`read` scope, every other method one with `operate` (a key given without "
                                "a scope has every scope). Each key may make WCML_API_RATE requests a "
                                "second (bursts of WCML_API_BURST); past that, 429 with Retry-After."},
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/v1/predictions": {"get": {
                "operationId": "listPredictions",
                "summary": "Predictions, newest first; or, with `after`, oldest first from an id (a feed)",
                "parameters": [*PREDICTION_FILTERS, *PAGING, FEED],
                "responses": {"200": _json(_ref("PredictionPage"), "One page of predictions."),
                              "400": _PREDICTION_400, "401": _R["401"]}}},
            "/api/v1/issues/{owner}/{repo}/{number}": {"get": {
                "operationId": "issuePredictions", "summary": "The latest prediction per task of an issue",
                "parameters": _ISSUE_PATH,
                "responses": {"200": _json(_ref("IssuePredictions"), "Latest prediction per task."),
                              "400": _R["400"], "401": _R["401"], "404": _R["404"]}}},
            "/api/v1/issues/{owner}/{repo}/{number}/score": {"post": {
                "operationId": "scoreIssueNow",
                "summary": "Fetch this issue and its events from GitHub now (a message to ingest beside the "
                           "relay); its predictions follow within seconds at /api/v1/issues/{owner}/{repo}/"
                           "{number}. A refusal from GitHub (no such issue, a pull request) is dead-lettered "
                           "with GitHub's answer (`wcml dead list`).",
                "parameters": _ISSUE_PATH,
                "responses": {"202": _json(_ref("ScoreRequested"), "Asked for."),
                              "400": _R["400"], "401": _R["401"], "404": _R["404"]}}},
            "/api/v1/actions": {"get": {
                "operationId": "listActions",
                "summary": "Actions on GitHub, done and would-be (dry run), newest first, as the actions "
                           "service has reported them",
                "parameters": ACTION_FILTERS,
                "responses": {"200": _json(_ref("ActionPage"), "One page of actions."),
                              "400": _R["400"], "401": _R["401"]}}},
            "/api/v1/models": {"get": {
                "operationId": "listModels", "summary": "Model versions that have predictions",
                "responses": {"200": _json(_ref("ModelList"), "Per task and model version."),
                              "400": _R["400"], "401": _R["401"]}}},
            "/api/v1/replays": {"get": {
                "operationId": "listReplays", "summary": "Replay runs with their progress, newest first, as "
                                                     "the replay source has reported them",
                "parameters": [PAGING[1]],
                "responses": {"200": _json(_ref("ReplayList"), "The newest runs."),
                              "400": _R["400"], "401": _R["401"]}},
                "post": {
                "operationId": "requestReplay",
                "summary": "Ask for a replay of a slice of the event log: a message to the replay source "
                           "beside the relay, which records and runs it (requested, running, done). The run "
                           "is recorded here as requested before the answer, so /api/v1/replays/{replay_id} "
                           "finds it at once; its progress follows as the replay source reports it",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(
                    "ReplayRequest")}}},
                "responses": {"202": {**_json(_ref("ReplayRun"), "The run, recorded as requested."),
                                      "links": {"ReadTheRun": _READ_THE_RUN}},
                              "400": _UNKNOWN_NAME, "401": _R["401"]}}},
            "/api/v1/replays/{replay_id}": {"get": {
                "operationId": "replayRun", "summary": "One replay run and its progress",
                "parameters": [_REPLAY_ID],
                "responses": {"200": _json(_ref("ReplayRun"), "The run."), "400": _R["400"],
                              "401": _R["401"], "404": _R["404"]}}},
            "/api/v1/replays/{replay_id}/comparison": {"get": {
                "operationId": "compareModels",
                "summary": "Two model versions of one task on the events a replay scored",
                "parameters": [_REPLAY_ID, *(
                    {"name": name, "in": "query", "required": True, "schema": _NAME, "description": text,
                     "example": example}
                    for name, text, example in (
                        ("task", "Task name, one with stored predictions.", "needsdiagnosis"),
                        ("model_a", "A model version with predictions of the task, e.g. the live one.", "m1"),
                        ("model_b", "Another, e.g. the replay's.", "m2")))],
                "responses": {"200": _json(_ref("Comparison"), "Counts, agreement and label distributions."),
                              "400": _COMPARISON_400, "401": _R["401"], "404": _R["404"]}}},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": _PUBLIC,
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 document.")}}},
            "/": {"get": {
                "operationId": "dashboard",
                "summary": "HTML dashboard, for a caller with the `read` scope: a session from /login (its "
                           "cookie), or the key in `Authorization: Bearer`",
                "security": [{"bearerAuth": []}, {"session": []}],
                "parameters": [*(p for p in PREDICTION_FILTERS if p["name"] != "replay"), _query(
                    "replay", _TEXT, "As in the API, but absent means `none` (live only); `all` shows "
                                     "live and replayed."), PAGING[0]],
                "responses": {
                    "200": {"description": "HTML page.", "content": _HTML_PAGE},
                    "303": {"description": "No session and no key: to the login form.",
                            "headers": {"Location": {"schema": {"type": "string", "enum": ["login"]}}}},
                    "400": {"description": "HTML page naming the bad filter (as the API's 400s: a value not "
                                           "valid, min_confidence above max_confidence, since later than "
                                           "until, a cursor not issued here).", "content": _HTML_PAGE},
                    "403": {"description": "The key lacks the `read` scope.", "content": _TEXT_PAGE},
                    "429": {"description": "Over this key's rate.", "content": _TEXT_PAGE,
                            "headers": _RETRY_AFTER}}}},
            "/login": {
                "get": {
                    "operationId": "loginForm", "summary": "The dashboard's login form (sets the session "
                    "cookie that holds its CSRF token)", "security": _PUBLIC,
                    "responses": {"200": {"description": "HTML form.", "content": _HTML_PAGE}}},
                "post": {
                    "operationId": "login",
                    "summary": "Log in with an API key: a signed session cookie (HttpOnly, SameSite=Strict, "
                               "Secure over HTTPS) names the key, for 12 hours", "security": _PUBLIC,
                    "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
                        "schema": _FORM}}},
                    "responses": {
                        "303": {"description": "Logged in: to the dashboard.",
                                "headers": {"Set-Cookie": {"schema": {"type": "string"}}}},
                        "401": {"description": "Not a known key: the form again.", "content": _HTML_PAGE},
                        "403": {"description": "The form's CSRF token is not the session's (text), or the "
                                               "key lacks the `read` scope (the form again).",
                                "content": {**_TEXT_PAGE, **_HTML_PAGE}}}}},
            "/logout": {"post": {
                "operationId": "logout", "summary": "End the dashboard's session", "security": _PUBLIC,
                "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "required": ["csrf"],
                               "properties": {"csrf": _FORM["properties"]["csrf"]}}}}},
                "responses": {
                    "303": {"description": "Logged out: to the login form."},
                    "403": {"description": "The form's CSRF token is not the session's.",
                            "content": _TEXT_PAGE}}}},
            "/docs": {"get": {
                "operationId": "apiReference", "summary": "This document rendered (Swagger UI, served "
                                                          "from this process)", "security": _PUBLIC,
                "responses": {"200": {"description": "HTML page.", "content": _HTML_PAGE}}}},
            "/docs/{asset}": {"get": {
                "operationId": "apiReferenceAsset", "summary": "The reference page's script and style",
                "security": _PUBLIC,
                "parameters": [{"name": "asset", "in": "path", "required": True, "schema": {
                    "type": "string", "enum": ["init.js", "swagger-ui-bundle.js", "swagger-ui.css"]}}],
                "responses": {
                    "200": {"description": "The file.", "content": {
                        "text/javascript": {"schema": {"type": "string"}},
                        "text/css": {"schema": {"type": "string"}}}},
                    "404": {"description": "No such asset.", "content": _TEXT_PAGE}}}},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Database reachable", "security": _PUBLIC,
                "responses": {"200": _json(_ref("Health"), "Ready."),
                              "503": _json(_ref("Health"), "The database does not answer.")}}},
            "/metrics": {"get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics, for any key (the `metrics` scope is the least); without a "
                           "key on the WCML_METRICS_BIND listener only",
                "responses": {"200": {"description": "Prometheus text format.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "401": _R["401"]}}},
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "One of WCML_API_KEYS."},
                "session": {"type": "apiKey", "in": "cookie", "name": "wcml_session",
                            "description": "The dashboard's session, from POST /login."}},
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
        },
    }
