"""Schemathesis against the real query API on PostgreSQL: every documented operation, generated requests,
every built-in check (none is switched off for the file; a case the document cannot describe skips one
check for that case, saying why).

It fails on any 5xx, on an answer the document does not describe (status, content type, headers,
schema), on an /api/ route that answers without the key, on invalid input accepted, on a method the
document does not list answered otherwise than 405 with ``Allow``, and (stateful) on a replay run the
API answered with that its link to ``GET /api/v1/replays/{replay_id}`` does not find at once. The
refusals (401, 403 naming the scope, 429 with Retry-After) are checked against the document too.
"""

from __future__ import annotations

import contextlib
import os
import threading

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from werkzeug.serving import make_server

from services.api.filters import FilterError, Filters, decode_cursor
from services.api.openapi import openapi_document
from services.api.rate_limit import RateLimit
from services.api.routes import COMPARISON_PARAMS
from shared.database import create_engine
from tests.builders import AUTH, add_run, api_app, make, store
from tests.harness import free_port

# Per operation and phase: the file takes ~40 s (WCML_TEST_SCHEMATHESIS_EXAMPLES=600 for a long hunt).
EXAMPLES = int(os.environ.get("WCML_TEST_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture
def base_url(pg_url, tmp_path):
    """The API on a real HTTP server on loopback, over a seeded PostgreSQL database."""
    engine = create_engine(pg_url)
    # The document's examples (webcompat/web-bugs#1, replay r-1, models m1/m2) find these rows.
    store(engine, tmp_path, [make(i) for i in range(40)]
          + [make(100 + i, task="needsdiagnosis", model_version="m2", delivery_id=f"d-{i}", replay_id="r-1")
             for i in range(0, 40, 2)])
    add_run(engine, "r-1", model_version="m2", tasks=["needsdiagnosis"])
    with serving(api_app(engine)) as url:
        yield url
    engine.dispose()


@contextlib.contextmanager
def serving(app):
    """``app`` on a real HTTP server on loopback, for the block."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


# The document as the app serves it (checked equal below); the server comes per test from the
# fixture, since schemathesis' fixture-based lazy loader does not run on pytest 9.
schema = schemathesis.openapi.from_dict(openapi_document())


def test_the_served_document_is_the_one_tested(base_url):
    assert requests.get(f"{base_url}/openapi.json", timeout=10).json() == openapi_document()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_openapi_document(case, base_url):
    query = case.query or {}
    skip = [positive_data_acceptance] if beyond_the_schema(query) or unknown_names(query, case.body) else []
    if any(value == "" for name, value in query.items() if name not in COMPARISON_PARAMS):
        # Every optional parameter is `allowEmptyValue` (an HTML form sends empty fields), but
        # schemathesis' coverage phase still counts an empty number as schema-violating.
        skip.append(negative_data_rejection)
    case.call_and_validate(base_url=base_url, headers=AUTH, excluded_checks=skip)


# What the seeded store holds (both tasks scored by m1 and m2), and so what a comparison or a replay
# may name here (the packaged rules route both tasks; no bundle is readable, so the stored versions).
KNOWN = {"issuetype": {"m1", "m2"}, "needsdiagnosis": {"m1", "m2"}}


def unknown_names(query: dict, body) -> bool:
    """A schema-valid comparison or replay request naming a task or model version that is not known:
    a 400 by design (shared/known.py), which the document cannot enumerate."""
    if "task" in query and "model_a" in query:
        task = str(query["task"])
        return task not in KNOWN or not {str(query["model_a"]), str(query.get("model_b"))} <= KNOWN[task]
    if not isinstance(body, dict):
        return False
    tasks, version = body.get("tasks", []), body.get("model_version")
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks) or not isinstance(
            version, str | None):
        return False  # not schema-valid: the negative checks' business
    return not set(tasks) <= set(KNOWN) or (version is not None and any(version not in KNOWN[t]
                                                                         for t in tasks or KNOWN))


def beyond_the_schema(query: dict) -> str | None:
    """Why a schema-valid request is still a 400 by design, in what OpenAPI 3.0 cannot say: a range
    given backwards, one model compared with itself, a date that does not exist (May 32), a cursor
    this API never issued. The 400 itself is still checked against the document."""
    values = {k: str(v) for k, v in query.items()}
    try:
        for name in ("since", "until"):
            Filters.parse({name: values.get(name, "")})
        decode_cursor(values.get("cursor", "").strip() or None)
    except FilterError as exc:
        return str(exc)
    try:
        Filters.parse({k: values[k] for k in ("min_confidence", "max_confidence", "since", "until")
                       if k in values})
    except FilterError as exc:
        if "greater" in str(exc) or "later" in str(exc):
            return str(exc)
    if "model_a" in values and values["model_a"] == values.get("model_b"):
        return "the same model twice"
    return None


def test_a_requested_run_is_readable_through_the_documents_link(base_url):
    """Stateful: POST /api/v1/replays, then its 202's link (``ReadTheRun``) to GET the run, checked by
    every check, ``ensure_resource_availability`` among them (the id answered with is found at once)."""

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"base_url": base_url, "headers": AUTH}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            skip = [positive_data_acceptance] if unknown_names(case.query or {}, case.body) else []
            case.validate_response(response, additional_checks=additional_checks, excluded_checks=skip,
                                   headers=AUTH, transport_kwargs={"base_url": base_url, "headers": AUTH},
                                   recorder=self.recorder)

    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=4, deadline=None,
        suppress_health_check=list(HealthCheck)))


READER, SCRAPER = "conformance-reader-key", "conformance-scraper-key"


def test_refusals_are_as_documented(pg_url):
    """401 (with WWW-Authenticate), 403 naming the scope, 429 with Retry-After: each answer validated
    against its operation's responses in the document."""
    engine = create_engine(pg_url)
    app = api_app(engine, (f"read:{READER}", f"metrics:{SCRAPER}"), rate_limit=RateLimit(rate=0.01, burst=1))
    try:
        with serving(app) as url:
            def check(method: str, path: str, key: str | None, status: int, operation: str, **body):
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                answer = requests.request(method, url + path, headers=headers, timeout=10, **body)
                assert answer.status_code == status, (path, answer.text)
                schema[operation][method].validate_response(answer)
                return answer

            check("GET", "/api/v1/models", None, 401, "/api/v1/models")
            scoped = check("GET", "/api/v1/models", SCRAPER, 403, "/api/v1/models")
            assert "'read' scope" in scoped.json()["error"]
            lacking = check("POST", "/api/v1/replays", READER, 403, "/api/v1/replays", json={})
            assert "'operate' scope" in lacking.json()["error"]
            check("GET", "/api/v1/models", READER, 200, "/api/v1/models")  # the 403s took no token: this one
            over = check("GET", "/api/v1/models", READER, 429, "/api/v1/models")
            assert int(over.headers["Retry-After"]) >= 1
            check("GET", "/metrics", None, 401, "/metrics")
    finally:
        engine.dispose()
