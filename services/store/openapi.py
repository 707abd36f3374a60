"""The query API's OpenAPI 3.0 document, written by hand to say exactly what ``api.py`` does.

tests/integration/test_store_api.py checks it against the routes and validates real
responses with it, so a change on one side without the other fails a test.
"""

from __future__ import annotations

from typing import Any

from services.store.filters import DEFAULT_LIMIT, MAX_LIMIT

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_TEXT = {"type": "string", "maxLength": 64}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_WHEN = {"type": "string", "example": "2024-05-01T00:00:00Z"}

PREDICTION_FILTERS = [
    _query("repo", {"type": "string", "example": "webcompat/web-bugs"}, "Repository, owner/name."),
    _query("issue", {"type": "integer", "minimum": 1}, "Issue number."),
    _query("task", _TEXT, "Task name, e.g. needsdiagnosis."),
    _query("model", _TEXT, "Model version."),
    _query("label", _TEXT, "Predicted label."),
    _query("min_confidence", _UNIT, "Confidence at least this (inclusive)."),
    _query("max_confidence", _UNIT, "Confidence at most this (inclusive)."),
    _query("since", _WHEN, "predicted_at at or after this ISO 8601 date or date-time (UTC if naive)."),
    _query("until", _WHEN, "predicted_at before this ISO 8601 date or date-time (UTC if naive)."),
    _query("replay", _TEXT, "A replay id; `none` for live predictions only, `any` for replayed ones only."),
]
PAGING = [
    _query("cursor", {"type": "string"}, "`next_cursor` of the previous page (opaque)."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
           "Page size."),
]

_PREDICTION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "task", "model_version", "delivery_id", "position", "event", "action", "repo",
                 "number", "label", "confidence", "probabilities", "predicted_at", "stored_at",
                 "replay_id", "blob_key"],
    "properties": {
        "id": {"type": "integer", "description": "Row id; newer rows have larger ids."},
        "task": {"type": "string"},
        "model_version": {"type": "string"},
        "delivery_id": {"type": "string", "description": "X-GitHub-Delivery of the triggering event."},
        "position": {"type": "integer", "description": "The triggering event's event-log position."},
        "event": {"type": "string", "nullable": True, "example": "issues"},
        "action": {"type": "string", "nullable": True, "example": "opened"},
        "repo": {"type": "string", "example": "webcompat/web-bugs"},
        "number": {"type": "integer"},
        "label": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
        "predicted_at": {"type": "string", "format": "date-time"},
        "stored_at": {"type": "string", "format": "date-time"},
        "replay_id": {"type": "string", "nullable": True, "description": "Null for live predictions."},
        "blob_key": {"type": "string", "nullable": True, "description": "Key of the history document."},
    },
}

_SCHEMAS = {
    "Error": {"type": "object", "additionalProperties": False, "required": ["error"],
              "properties": {"error": {"type": "string", "description": "One line."}}},
    "Prediction": _PREDICTION,
    "PredictionPage": {
        "type": "object", "additionalProperties": False, "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref("Prediction")},
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
    "Health": {"type": "object", "additionalProperties": False, "required": ["status"],
               "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                              "error": {"type": "string"}}},
}

_RESPONSES = {
    "BadRequest": _json(_ERROR, "A filter, the page size or the cursor is not valid."),
    "Unauthorized": _json(_ERROR, "No API key, or not a known one."),
    "NotFound": _json(_ERROR, "Nothing here."),
}
_R = {code: {"$ref": f"#/components/responses/{name}"}
      for code, name in (("400", "BadRequest"), ("401", "Unauthorized"), ("404", "NotFound"))}
_PUBLIC: list[dict[str, list]] = []


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "webcompat-ml query API", "version": "1",
                 "description": "Predictions stored by the webcompat-ml pipeline. Every /api/ "
                                "operation needs `Authorization: Bearer <API key>`."},
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/v1/predictions": {"get": {
                "operationId": "listPredictions", "summary": "Predictions, newest first",
                "parameters": PREDICTION_FILTERS + PAGING,
                "responses": {"200": _json(_ref("PredictionPage"), "One page of predictions."),
                              "400": _R["400"], "401": _R["401"]}}},
            "/api/v1/issues/{owner}/{repo}/{number}": {"get": {
                "operationId": "issuePredictions", "summary": "The latest prediction per task of an issue",
                "parameters": [
                    {"name": "owner", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "repo", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "number", "in": "path", "required": True,
                     "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": _json(_ref("IssuePredictions"), "Latest prediction per task."),
                              "401": _R["401"], "404": _R["404"]}}},
            "/api/v1/models": {"get": {
                "operationId": "listModels", "summary": "Model versions that have predictions",
                "responses": {"200": _json(_ref("ModelList"), "Per task and model version."),
                              "401": _R["401"]}}},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": _PUBLIC,
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 document.")}}},
            "/": {"get": {
                "operationId": "dashboard", "summary": "Read-only HTML dashboard", "security": _PUBLIC,
                "parameters": [*(p for p in PREDICTION_FILTERS if p["name"] != "replay"), _query(
                    "replay", _TEXT, "As in the API, but absent means `none` (live only); `all` shows "
                                     "live and replayed."), PAGING[0]],
                "responses": {
                    "200": {"description": "HTML page.", "content": {"text/html": {"schema": {
                        "type": "string"}}}},
                    "400": {"description": "HTML page naming the bad filter.",
                            "content": {"text/html": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Database reachable", "security": _PUBLIC,
                "responses": {"200": _json(_ref("Health"), "Ready."),
                              "503": _json(_ref("Health"), "The database does not answer.")}}},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus metrics", "security": _PUBLIC,
                "responses": {"200": {"description": "Prometheus text format.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "One of WCML_API_KEYS."}},
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
        },
    }
