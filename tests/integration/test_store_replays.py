"""Replay runs and model comparison in the store: the query, the API and its 400/404s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api import queries
from services.api.filters import FilterError
from tests.builders import AUTH, add_run, api_app, make, store

REPO = "webcompat/web-bugs"
ND, INV = "needsdiagnosis", "invalid"


def nd(i: int, model: str, label: str, replay: str | None, **changes):
    return make(i, task=ND, model_version=model, delivery_id=f"d{i}", repo=REPO, number=i, label=label,
                replay_id=replay, position=i, **changes)


@pytest.fixture
def scored(engine, tmp_path):
    """d1-d4: live m1 and replay r1 with m2; d5: live m1 and replay r2; d6: live m1 only."""
    store(engine, tmp_path, [
        nd(1, "m1", ND, None), nd(2, "m1", ND, None), nd(3, "m1", INV, None), nd(4, "m1", INV, None),
        nd(5, "m1", ND, None), nd(6, "m1", INV, None),
        nd(1, "m2", ND, "r1"), nd(2, "m2", INV, "r1"), nd(3, "m2", INV, "r1"), nd(4, "m2", ND, "r1"),
        nd(5, "m2", INV, "r2"),
        make(7, task="issuetype", model_version="m2", delivery_id="d1", label="bug", replay_id="r1"),
    ])


@pytest.fixture
def engine(request):
    from shared.database import create_engine

    url = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_comparison_within_a_replay(engine, scored):
    got = queries.compare_models(engine, "r1", task=ND, model_a="m1", model_b="m2")
    assert got["model_a"] == {"model_version": "m1", "count": 4, "labels": {INV: 2, ND: 2}, "truth": None}
    assert got["model_b"] == {"model_version": "m2", "count": 4, "labels": {INV: 2, ND: 2}, "truth": None}
    assert (got["pairs"], got["agreements"], got["agreement_rate"]) == (4, 2, 0.5)
    assert got["pair_labels"] == [{"label_a": a, "label_b": b, "count": 1}
                                  for a, b in ((INV, INV), (INV, ND), (ND, INV), (ND, ND))]


def test_comparison_without_a_replay_takes_every_event_both_scored(engine, scored):
    got = queries.compare_models(engine, task=ND, model_a="m1", model_b="m2")
    assert (got["model_a"]["count"], got["model_b"]["count"], got["pairs"], got["agreements"]) == (6, 5, 5, 2)


def test_truth_gives_accuracy_precision_recall(engine, scored):
    truth = {"d1": ND, (REPO, 2): INV, "d3": INV, "d4": ND, (REPO, 4): INV}  # a delivery id beats its issue
    got = queries.compare_models(engine, "r1", task=ND, model_a="m1", model_b="m2", truth=truth)
    a, b = got["model_a"]["truth"], got["model_b"]["truth"]
    assert a == {"evaluated": 4, "accuracy": 0.5, "macro_precision": 0.5, "macro_recall": 0.5,
                 "labels": {INV: {"precision": 0.5, "recall": 0.5, "support": 2},
                            ND: {"precision": 0.5, "recall": 0.5, "support": 2}}}
    assert (b["accuracy"], b["macro_precision"], b["macro_recall"]) == (1.0, 1.0, 1.0)
    partial = queries.compare_models(engine, "r1", task=ND, model_a="m1", model_b="m2", truth={"d3": ND})
    assert partial["model_a"]["truth"]["labels"] == {INV: {"precision": 0.0, "recall": None, "support": 0},
                                                     ND: {"precision": None, "recall": 0.0, "support": 1}}


def test_comparison_with_nothing_scored(engine):
    got = queries.compare_models(engine, "r9", task=ND, model_a="m1", model_b="m2", truth={})
    assert (got["pairs"], got["agreement_rate"], got["model_a"]["count"]) == (0, None, 0)
    assert got["model_b"]["truth"] == {"evaluated": 0, "accuracy": None, "macro_precision": None,
                                       "macro_recall": None, "labels": {}}


@pytest.mark.parametrize("args, word", [
    (dict(task="", model_a="m1", model_b="m2"), "task"), (dict(task=ND, model_a="m1", model_b="m1"), "same"),
    (dict(task=ND, model_a="x" * 65, model_b="m2"), "model_a"),
])
def test_comparison_needs_a_task_and_two_models(engine, args, word):
    with pytest.raises(FilterError, match=word):
        queries.compare_models(engine, "r1", **args)


# -- API ------------------------------------------------------------------------

@pytest.fixture
def client(engine):
    return api_app(engine).test_client()


def test_replay_runs_newest_first_with_progress(client, engine):
    start = datetime(2024, 6, 1, tzinfo=UTC)
    add_run(engine, "old", created_at=start, state="done", total=0, published=0,
            finished_at=start + timedelta(hours=1))
    add_run(engine, "new", created_at=start + timedelta(days=1), total=8, published=2, model_version=None)
    add_run(engine, "broken", created_at=start + timedelta(days=2), state="failed", error="broker gone")
    answer = client.get("/api/v1/replays", headers=AUTH)
    assert answer.status_code == 200
    items = answer.json["items"]
    assert [(r["id"], r["state"], r["progress"]) for r in items] == [
        ("broken", "failed", 0.4), ("new", "running", 0.25), ("old", "done", 1.0)]
    assert items[2]["finished_at"] == "2024-06-01T01:00:00Z" and items[0]["error"] == "broker gone"
    assert items[1]["model_version"] is None and items[1]["tasks"] == [ND]
    assert [r["id"] for r in client.get("/api/v1/replays?limit=1", headers=AUTH).json["items"]] == ["broken"]
    one = client.get("/api/v1/replays/new", headers=AUTH)
    assert one.status_code == 200 and one.json == items[1]
    assert client.get("/api/v1/replays/nope", headers=AUTH).status_code == 404


def test_comparison_route(client, engine, scored):
    add_run(engine, "r1")
    answer = client.get("/api/v1/replays/r1/comparison?task=needsdiagnosis&model_a=m1&model_b=m2",
                        headers=AUTH)
    assert answer.status_code == 200
    assert answer.json["replay"]["id"] == "r1" and answer.json["agreement_rate"] == 0.5
    assert answer.json["model_a"]["truth"] is None


@pytest.mark.parametrize("url, status, word", [
    ("/api/v1/replays/r1/comparison?task=needsdiagnosis&model_a=m1", 400, "model_b"),
    ("/api/v1/replays/r1/comparison?task=needsdiagnosis&model_a=m1&model_b=m1", 400, "same"),
    ("/api/v1/replays/r1/comparison?task=t&model_a=m1&model_b=m2&label=x", 400, "label"),
    ("/api/v1/replays/r1/comparison?task=t&task=u&model_a=m1&model_b=m2", 400, "once"),
    ("/api/v1/replays?limit=0", 400, "limit"),
    ("/api/v1/replays?state=done", 400, "state"),
    ("/api/v1/replays/r1?x=1", 400, "x"),
    ("/api/v1/replays/r7/comparison?task=needsdiagnosis&model_a=m1&model_b=m2", 404, "r7"),
    ("/api/v1/replays/r7/comparison?task=t&model_a=m1&model_b=m2", 400, "unknown task"),
])
def test_comparison_and_replay_errors(client, engine, scored, url, status, word):
    add_run(engine, "r1")
    answer = client.get(url, headers=AUTH)
    assert answer.status_code == status and word in answer.json["error"]
    assert client.get(url).status_code == 401


@pytest.mark.parametrize("query, error", [
    ("task=nope&model_a=m1&model_b=m2",
     "unknown task 'nope'; known (with predictions): issuetype, needsdiagnosis"),
    ("task=needsdiagnosis&model_a=m9&model_b=m2",
     "unknown model_a 'm9' for task needsdiagnosis; known (with predictions): m1, m2"),
    ("task=needsdiagnosis&model_a=m1&model_b=m9",
     "unknown model_b 'm9' for task needsdiagnosis; known (with predictions): m1, m2"),
    ("task=issuetype&model_a=m1&model_b=m2",  # m1 has predictions, but none of issuetype
     "unknown model_a 'm1' for task issuetype; known (with predictions): m2"),
])
def test_a_comparison_names_only_what_has_predictions(client, engine, scored, query, error):
    add_run(engine, "r1")
    answer = client.get(f"/api/v1/replays/r1/comparison?{query}", headers=AUTH)
    assert (answer.status_code, answer.json) == (400, {"error": error})


def test_wcml_compare_names_the_unknown_and_the_known(engine, scored, capsys):
    from services.api import commands
    from shared.errors import UserError

    with pytest.raises(UserError, match="^unknown model_b 'm9' for task needsdiagnosis; known .*: m1, m2$"):
        commands.compare(engine, "r1", task=ND, model_a="m1", model_b="m9")
    assert capsys.readouterr().out == ""
