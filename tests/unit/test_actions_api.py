"""Recorded actions through GET /api/v1/actions and the dashboard panel (the API's read model, fed by the
actions service's reports through the in-process broker) and `wcml actions list` (the actions table)."""

from __future__ import annotations

import json

import pytest

from services.actions.ledger import Ledger
from services.actions.policy import Intent
from services.actions.reports import to_broker
from services.api import action_view
from services.cli import main
from shared import topology
from shared.broker.memory import MemoryBroker
from shared.database import create_engine
from tests.builders import AUTH, api_app
from tests.unit.test_actions import prediction


@pytest.fixture
def engine(sqlite_url):
    """Five dry-run actions and three live ones, as the actions worker records and reports them; the
    reports reach the API's consumer one at a time, newest first (each pending one after its settled
    one: it must not roll it back)."""
    engine = create_engine(sqlite_url)
    broker = MemoryBroker()
    topology.declare(broker)
    ledger, report = Ledger(engine), to_broker(broker)
    dry = [(prediction(n), Intent("label", "bug", 1)) for n in range(1, 6)]
    ledger.claim(dry, live=False)
    report(ledger.recorded(dry, live=False))
    live = [(prediction(n), Intent("label", "bug", 1)) for n in (1, 2, 3)]
    claims = ledger.claim(live, live=True)
    report(ledger.recorded(live, live=True))
    report([ledger.settle(c, "skipped" if c.number == 2 else "done", f"because of #{c.number}")
            for c in claims])
    reports = broker.get(topology.ACTIONS_VIEW_QUEUE.name, 100)
    assert len(reports) == 11
    for delivery in reversed(reports):
        assert action_view.handle(engine, [delivery]) == []
    broker.settle(reports, requeue=False)
    yield engine
    engine.dispose()


def test_actions_are_listed_newest_first_with_filters_and_pages(engine):
    client = api_app(engine).test_client()
    everything = client.get("/api/v1/actions", headers=AUTH).get_json()
    newest = [(i["number"], i["mode"]) for i in everything["items"]][:3]
    assert newest == [(3, "live"), (2, "live"), (1, "live")]
    assert len(everything["items"]) == 8 and everything["next_cursor"] is None
    live = client.get("/api/v1/actions?mode=live&state=done", headers=AUTH).get_json()["items"]
    assert [(i["number"], i["reason"]) for i in live] == [(3, "because of #3"), (1, "because of #1")]
    first = client.get("/api/v1/actions?limit=3", headers=AUTH).get_json()
    second = client.get(f"/api/v1/actions?limit=3&cursor={first['next_cursor']}", headers=AUTH).get_json()
    assert [i["id"] for i in first["items"] + second["items"]] == [i["id"] for i in everything["items"][:6]]
    query = "repo=webcompat/web-bugs&issue=4&task=issuetype&action=label"
    one = client.get(f"/api/v1/actions?{query}", headers=AUTH).get_json()["items"]
    assert [(i["number"], i["state"], i["target"]) for i in one] == [(4, "dry-run", "bug")]


@pytest.mark.parametrize("query", ["state=sent", "mode=LIVE", "action=delete", "issue=0", "issue=x",
                                   "cursor=-1", "limit=501", "limit=0", "task=a%00b", "color=red",
                                   "state=done&state=failed"])
def test_a_bad_filter_is_a_400_naming_it(engine, query):
    answer = api_app(engine).test_client().get(f"/api/v1/actions?{query}", headers=AUTH)
    assert answer.status_code == 400
    name = query.split("=")[0]
    assert name in answer.get_json()["error"]


def test_the_listing_needs_a_key(engine):
    assert api_app(engine).test_client().get("/api/v1/actions").status_code == 401


def test_the_dashboard_shows_the_latest_actions(engine):
    page = api_app(engine).test_client().get("/", headers=AUTH).get_data(as_text=True)
    panel = page[page.index('<section id="actions">'):page.index('<section id="labels">')]
    assert panel.count("<tr>") == 9  # the header and eight actions
    assert "because of #2" in panel and 'state-skipped' in panel


def test_wcml_actions_list_prints_a_line_each_or_json(engine, sqlite_url, monkeypatch, capsys):
    monkeypatch.setenv("WCML_DATABASE_URL", sqlite_url)
    assert main(["actions", "list", "--mode", "live", "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and "issuetype label 'bug'" in out and "more: --cursor" in err
    assert main(["actions", "list", "--json", "--state", "skipped"]) == 0
    [item] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (item["number"], item["reason"]) == (2, "because of #2")
    assert main(["actions", "list", "--state", "sent"]) == 2
    assert "state must be one of" in capsys.readouterr().err
