"""The query API, its OpenAPI document and the dashboard, on real PostgreSQL (and SQLite)."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import UTC, datetime

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec

from services.api import queries
from services.api.filters import Filters
from services.api.routes import api_blueprint
from shared.database import create_engine
from shared.known import Known
from tests.builders import AUTH, KEYS, api_app, make, store


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request):
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    engine = create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine):
    return api_app(engine).test_client()


@pytest.fixture
def seeded(engine, client, tmp_path) -> list[dict]:
    """30 stored predictions, as the API lists them (newest first)."""
    store(engine, tmp_path, [make(i) for i in range(30)])
    answer = client.get("/api/v1/predictions?limit=500", headers=AUTH)
    assert answer.status_code == 200 and answer.json["next_cursor"] is None
    assert len(answer.json["items"]) == 30
    return answer.json["items"]


def ids(answer) -> list[int]:
    assert answer.status_code == 200, answer.json
    return [item["id"] for item in answer.json["items"]]


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


MAY3 = datetime(2024, 5, 3, tzinfo=UTC)


FILTER_CASES = {
    "repo=mozilla/webcompat-reporter": lambda p: p["repo"] == "mozilla/webcompat-reporter",
    "issue=3": lambda p: p["number"] == 3,
    "task=issuetype": lambda p: p["task"] == "issuetype",
    "model=m2": lambda p: p["model_version"] == "m2",
    "label=invalid": lambda p: p["label"] == "invalid",
    "min_confidence=0.7": lambda p: p["confidence"] >= 0.7,
    "max_confidence=0.5": lambda p: p["confidence"] <= 0.5,
    "min_confidence=0.4&max_confidence=0.6": lambda p: 0.4 <= p["confidence"] <= 0.6,
    "since=2024-05-03": lambda p: when(p["predicted_at"]) >= MAY3,
    "since=2024-05-03T02:00:00%2B02:00": lambda p: when(p["predicted_at"]) >= MAY3,
    "since=2024-05-03T02:00:00+02:00": lambda p: when(p["predicted_at"]) >= MAY3,  # "+" arrives as " "
    "until=2024-05-03T00:00:00Z": lambda p: when(p["predicted_at"]) < MAY3,
    "since=2024-05-02T12:00:00&until=2024-05-04": lambda p: datetime(2024, 5, 2, 12, tzinfo=UTC)
    <= when(p["predicted_at"]) < datetime(2024, 5, 4, tzinfo=UTC),
    "replay=none": lambda p: p["replay_id"] is None,
    "replay=any": lambda p: p["replay_id"] is not None,
    "replay=r-1": lambda p: p["replay_id"] == "r-1",
    "repo=webcompat/web-bugs&task=needsdiagnosis&label=needsdiagnosis&replay=none":
        lambda p: p["repo"] == "webcompat/web-bugs" and p["task"] == "needsdiagnosis"
        and p["label"] == "needsdiagnosis" and p["replay_id"] is None,
    "task=nosuchtask": lambda p: False,
    "repo=&task=": lambda p: True,
}


@pytest.mark.parametrize("query", list(FILTER_CASES))
def test_every_filter(client, seeded, query):
    expected = [p["id"] for p in seeded if FILTER_CASES[query](p)]
    assert 0 < len(expected) < 30 or query in ("task=nosuchtask", "repo=&task=")
    assert ids(client.get(f"/api/v1/predictions?{query}&limit=500", headers=AUTH)) == expected


def test_items_are_newest_first_and_complete(seeded):
    assert [p["id"] for p in seeded] == sorted((p["id"] for p in seeded), reverse=True)
    first = seeded[-1]
    assert first == {**first, "delivery_id": "d-0", "task": "needsdiagnosis",
                     "repo": "mozilla/webcompat-reporter", "number": 1, "label": "needsdiagnosis",
                     "confidence": 0.3, "position": 0,
                     "predicted_at": "2024-05-01T00:30:00Z", "event": "issues", "action": "opened",
                     "replay_id": None, "probabilities": {"needsdiagnosis": 0.5},
                     "probability": None, "precision": None, "blob_key": first["blob_key"]}
    second = seeded[-2]
    assert (second["delivery_id"], second["probability"], second["precision"]) == ("d-1", 0.5, 0.7)
    assert re.fullmatch(r"history/\d{4}/\d\d/\d\d/[0-9a-f]{32}\.jsonl", first["blob_key"])  # its batch's


WALKS = {
    "": lambda p: True,
    "task=needsdiagnosis": lambda p: p["task"] == "needsdiagnosis",
    "replay=none&min_confidence=0.4": lambda p: p["replay_id"] is None and p["confidence"] >= 0.4,
}


@pytest.mark.parametrize("query", list(WALKS))
def test_cursor_walk_sees_every_row_once_while_rows_arrive(client, engine, seeded, tmp_path, query):
    expected = [p["id"] for p in seeded if WALKS[query](p)]
    walked, cursor, pages, extra = [], None, 0, 100
    while True:
        url = f"/api/v1/predictions?limit=4&{query}" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(url, headers=AUTH)
        walked += ids(answer)
        assert len(answer.json["items"]) <= 4
        cursor, pages = answer.json["next_cursor"], pages + 1
        if cursor is None:
            break
        store(engine, tmp_path, [make(extra), make(extra + 1)])  # newer rows land meanwhile
        extra += 2
    assert walked == expected  # newest first, none twice, none skipped, none of the late arrivals
    assert pages == -(-len(expected) // 4)  # an exact last page carries no cursor to an empty one


def test_exact_last_page_has_no_cursor(client, engine, tmp_path):
    store(engine, tmp_path, [make(i) for i in range(4)])
    first = client.get("/api/v1/predictions?limit=2", headers=AUTH).json
    second = client.get(f"/api/v1/predictions?limit=2&cursor={first['next_cursor']}", headers=AUTH).json
    assert len(second["items"]) == 2 and second["next_cursor"] is None


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEYS[0]}"},
    {"Authorization": "Bearer "}, {"Authorization": KEYS[0]}, {"Authorization": f"Bearer {KEYS[0]}x"},
])
@pytest.mark.parametrize("path", ["/api/v1/predictions", "/api/v1/models", "/api/v1/issues/a/b/1"])
def test_api_needs_a_known_key(client, headers, path):
    answer = client.get(path, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(answer.json) == {"error"} and "\n" not in answer.json["error"]
    assert KEYS[0] not in answer.get_data(as_text=True)


def test_any_configured_key_works_and_none_means_closed(engine):
    client = api_app(engine).test_client()
    for key in KEYS:
        assert client.get("/api/v1/models", headers={"Authorization": f"bearer  {key} "}).status_code == 200
    closed = api_app(engine, []).test_client()
    assert closed.get("/api/v1/models", headers={"Authorization": "Bearer "}).status_code == 401
    assert closed.get("/api/v1/models", headers=AUTH).status_code == 401


@pytest.mark.parametrize("query, word", [
    ("issue=abc", "issue"), ("issue=-3", "issue"), ("issue=0", "issue"), ("since=yesterday", "since"),
    ("until=2024-13-01", "until"), ("limit=501", "limit"), ("limit=0", "limit"), ("limit=ten", "limit"),
    ("cursor=bm9wZQ", "cursor"), ("cursor=%%%", "cursor"), ("min_confidence=2", "min_confidence"),
    ("max_confidence=nan", "max_confidence"), ("min_confidence=0.9&max_confidence=0.1", "greater"),
    ("since=2024-05-02&until=2024-05-01", "later"), ("repo=nosuchslash", "repo"), ("isue=3", "isue"),
    ("task=a&task=b", "once"), ("label=" + "x" * 65, "label"),
])
def test_bad_filters_are_400_with_one_line(client, query, word):
    answer = client.get(f"/api/v1/predictions?{query}", headers=AUTH)
    assert answer.status_code == 400
    assert set(answer.json) == {"error"} and word in answer.json["error"]
    assert "\n" not in answer.json["error"] and "Traceback" not in answer.json["error"]


def test_issue_lookup_prefers_live_then_position_then_row(client, engine, tmp_path):
    repo, number = "webcompat/web-bugs", 42
    base = dict(repo=repo, number=number, event="issues", action="opened")
    store(engine, tmp_path, [
        make(1, task="needsdiagnosis", delivery_id="a", position=10, label="needsdiagnosis", **base),
        make(2, task="needsdiagnosis", delivery_id="b", position=5, label="invalid", **base),
        make(3, task="needsdiagnosis", delivery_id="a", position=99, model_version="m9", replay_id="r",
             label="invalid", **base),
        make(4, task="issuetype", delivery_id="c", position=3, model_version="m1", label="bug", **base),
        make(5, task="issuetype", delivery_id="c", position=3, model_version="m2", label="feature", **base),
        make(6, task="other", delivery_id="z", position=1, replay_id="r", label="x", **base),
    ])
    answer = client.get(f"/api/v1/issues/{repo}/{number}", headers=AUTH)
    assert answer.status_code == 200
    latest = answer.json["predictions"]
    assert (answer.json["repo"], answer.json["number"]) == (repo, number)
    assert {t: (p["delivery_id"], p["model_version"], p["label"]) for t, p in latest.items()} == {
        "needsdiagnosis": ("a", "m1", "needsdiagnosis"),  # live beats a later replay
        "issuetype": ("c", "m2", "feature"),  # same position: the newer row
        "other": ("z", "m1", "x"),  # only replays: the replay stands
    }
    assert latest["needsdiagnosis"]["event"] == "issues" and latest["needsdiagnosis"]["action"] == "opened"


def test_unknown_issue_route_and_method_answer_json(client):
    for path in ("/api/v1/issues/webcompat/web-bugs/9999", "/api/v1/nothing",
                 "/api/v1/issues/a/b/notanumber"):
        answer = client.get(path, headers=AUTH)
        assert answer.status_code == 404 and set(answer.json) == {"error"}, path
    answer = client.post("/api/v1/predictions", headers=AUTH)
    assert answer.status_code == 405 and set(answer.json) == {"error"}
    assert "GET" in answer.headers["Allow"]


def test_unexpected_failure_is_json_without_a_trace(client, monkeypatch):
    def explode(_engine):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(queries, "model_versions", explode)
    answer = client.get("/api/v1/models", headers=AUTH)
    assert answer.status_code == 500 and answer.json == {"error": "internal error"}


def test_models_in_service(client, seeded):
    items = client.get("/api/v1/models", headers=AUTH).json["items"]
    got = {(m["task"], m["model_version"]): m for m in items}
    for key, m in got.items():
        mine = [p for p in seeded if (p["task"], p["model_version"]) == key]
        assert m["count"] == len(mine)
        assert m["live_count"] == sum(p["replay_id"] is None for p in mine)
        assert m["first_predicted_at"] == min(p["predicted_at"] for p in mine)
        assert m["last_predicted_at"] == max(p["predicted_at"] for p in mine)
    assert sum(m["count"] for m in items) == 30 and len(items) == 4


def test_label_counts_per_task_and_utc_day(engine, seeded):
    now = datetime(2024, 5, 6, 23, tzinfo=UTC)
    counts = queries.label_counts(engine, days=3, now=now)
    expected: dict[tuple[str, str, str], int] = {}
    for p in seeded:
        day = p["predicted_at"][:10]
        if day >= "2024-05-04":
            key = (p["task"], day, p["label"])
            expected[key] = expected.get(key, 0) + 1
    assert {(c["task"], c["day"], c["label"]): c["count"] for c in counts} == expected
    live = queries.label_counts(engine, Filters(replay="none", task="issuetype"), days=3, now=now)
    assert sum(c["count"] for c in live) == sum(
        1 for p in seeded if p["predicted_at"] >= "2024-05-04" and p["task"] == "issuetype"
        and p["replay_id"] is None)


# -- OpenAPI ------------------------------------------------------------------

def _spec(client) -> dict:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    return json.loads(answer.get_data())


def test_openapi_is_valid_and_lists_every_route(client):
    spec = _spec(client)
    validate_spec(spec)
    routes = {}
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    assert {path: set(ops) for path, ops in spec["paths"].items()} == routes
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "One of WCML_API_KEYS."}
    assert spec["security"] == [{"bearerAuth": []}]
    for path, ops in spec["paths"].items():
        for op in ops.values():
            if path.startswith("/api/"):
                assert "security" not in op and {"401", "403", "429"} <= set(op["responses"]), path
            elif path in ("/", "/metrics"):
                assert {"bearerAuth": []} in op.get("security", spec["security"]), path
            else:
                assert op["security"] == [], path
    params = {p["name"] for p in spec["paths"]["/api/v1/predictions"]["get"]["parameters"]}
    assert params == {f.name for f in fields(Filters)} | {"cursor", "limit", "after"}
    assert {"400", "401", "200"} <= set(spec["paths"]["/api/v1/predictions"]["get"]["responses"])
    assert "404" in spec["paths"]["/api/v1/issues/{owner}/{repo}/{number}"]["get"]["responses"]


def _conforms(spec: dict, path: str, status: int, answer) -> None:
    response = spec["paths"][path]["get"]["responses"][str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = {**response["content"]["application/json"]["schema"], "components": spec["components"]}
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(answer.json)


def test_answers_match_the_openapi_document(client, seeded):
    spec = _spec(client)
    some = seeded[0]
    issue = "/api/v1/issues/{owner}/{repo}/{number}"
    checks = [
        ("/api/v1/predictions", "/api/v1/predictions?limit=3", AUTH, 200),
        ("/api/v1/predictions", "/api/v1/predictions?limit=3000", AUTH, 400),
        ("/api/v1/predictions", "/api/v1/predictions", {}, 401),
        (issue, f"/api/v1/issues/{some['repo']}/{some['number']}", AUTH, 200),
        (issue, "/api/v1/issues/x/y/5", AUTH, 404),
        ("/api/v1/models", "/api/v1/models", AUTH, 200),
        ("/healthz", "/healthz", {}, 200),
    ]
    for path, url, headers, status in checks:
        answer = client.get(url, headers=headers)
        assert answer.status_code == status, url
        _conforms(spec, path, status, answer)
    with pytest.raises(Exception):  # noqa: B017 - the validator must be able to fail
        OAS30Validator({**spec["components"]["schemas"]["Prediction"], "components": spec["components"]}
                       ).validate({**some, "surprise": 1})


# -- health, metrics, dashboard ----------------------------------------------

def test_health_and_metrics(client):
    assert client.get("/healthz").json == {"status": "ok"}
    answer = client.get("/metrics", headers=AUTH)
    assert answer.status_code == 200 and answer.mimetype == "text/plain"


def test_health_is_503_when_the_database_is_down():
    engine = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    answer = api_app(engine).test_client().get("/healthz")
    assert answer.status_code == 503 and answer.json["status"] == "unavailable"


def test_dashboard_with_an_empty_database(client):
    answer = client.get("/", headers=AUTH)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    assert "No predictions stored yet" in page and "No predictions match" in page
    assert not re.search(r"<(script|link)\b|src=\"http|@import", page)


def test_dashboard_with_data_and_filters(client, engine, seeded, tmp_path):
    now = datetime.now(UTC).isoformat()
    store(engine, tmp_path, [make(100, predicted_at=now), make(101, predicted_at=now)])
    page = client.get("/?replay=all", headers=AUTH).get_data(as_text=True)
    newest = client.get("/api/v1/predictions?limit=1", headers=AUTH).json["items"][0]
    assert f"{newest['repo']}#{newest['number']}" in page
    assert f"width: {newest['confidence'] * 100:.1f}%" in page
    assert "Models in service" in page and "m2" in page and "Older" not in page  # 30 < one page
    assert page.count('class="stack"') == 2 * 14  # two tasks, 14 days each
    assert page.count('class="stack" style="width: 100.0%"') == 2  # today's bar is the tallest
    live = client.get("/", headers=AUTH).get_data(as_text=True)
    replayed = [p for p in seeded if p["replay_id"]]
    assert replayed and f'<span class="tag">{replayed[0]["replay_id"]}</span>' not in live
    only = client.get("/?task=issuetype&label=bug&repo=webcompat/web-bugs&model=m1&replay=all", headers=AUTH)
    text = only.get_data(as_text=True)
    assert only.status_code == 200 and 'value="issuetype"' in text
    rows = re.findall(r"<tr>\s*<td class=\"muted\" title=", text)
    assert len(rows) == sum(1 for p in seeded if p["task"] == "issuetype" and p["label"] == "bug"
                            and p["repo"] == "webcompat/web-bugs" and p["model_version"] == "m1")


def test_dashboard_pages_and_reports_bad_filters(client, engine, tmp_path):
    store(engine, tmp_path, [make(i, replay_id=None) for i in range(60)])
    first = client.get("/", headers=AUTH).get_data(as_text=True)
    older = re.search(r'href="(\?[^"]*cursor=[^"]+)"', first)
    assert older
    second = client.get("/" + older.group(1).replace("&amp;", "&"), headers=AUTH).get_data(as_text=True)
    assert "Older predictions" in second and "Older →" not in second
    assert len(re.findall(r"<tr>\s*<td class=\"muted\" title=", second)) == 10
    bad = client.get("/?repo=<script>alert(1)</script>", headers=AUTH)
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "repo must be owner/name" in text and "<script>alert" not in text


def test_blueprint_mounts_beside_other_routes(engine):
    from flask import Flask

    app = Flask("combined")
    unused = lambda _: pytest.fail("no replay is asked for")  # noqa: E731
    app.register_blueprint(api_blueprint(engine, KEYS, send_request=unused, known=Known(("needsdiagnosis",))))

    @app.post("/webhooks/github")
    def webhook():
        return "", 202

    client = app.test_client()
    assert client.post("/webhooks/github").status_code == 202
    assert client.get("/nothing").mimetype == "text/html"  # only /api/ errors are JSON
    assert client.get("/api/v1/nothing", headers=AUTH).json == {"error": "no API route /api/v1/nothing"}
    assert client.get("/api/v1/models", headers=AUTH).status_code == 200
