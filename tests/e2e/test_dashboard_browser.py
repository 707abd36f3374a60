"""The dashboard in real headless Chromium, served by `wcml api` (its own process) on PostgreSQL.

Checks what a person sees: the predictions table with confidence bars of the right length, the
label distribution per task and day, the models in service, replay runs with their progress,
and the filter form narrowing the table. Screenshots go to tests/output/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.database import create_engine
from tests.builders import add_run, make, store
from tests.harness import free_port
from tests.processes import Pipeline, wait_http

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("WCML_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[1] / "output"
API_KEY = "browser-test-key"
NOW = datetime.now(UTC).replace(microsecond=0)


def live(i: int):
    return make(i, predicted_at=(NOW - timedelta(minutes=47 * i)).isoformat(), replay_id=None)


LIVE = [live(i) for i in range(24)]
REPLAYED = [make(200 + i, model_version="m3", predicted_at=NOW.isoformat(), replay_id="r-7")
            for i in range(4)]


@pytest.fixture(scope="module")
def sync_playwright():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium; "
                    "scripts/test does it) or set WCML_TEST_CHROMIUM", pytrace=False)
    from playwright.sync_api import sync_playwright

    return sync_playwright


@pytest.fixture
def api_url(pg_url, tmp_path):
    engine = create_engine(pg_url)
    for p in [*reversed(LIVE), *REPLAYED]:  # oldest first: row ids follow predicted_at
        store(engine, tmp_path, [p])
    add_run(engine, "r-7", created_at=NOW - timedelta(hours=1), total=10, published=4, model_version="m3")
    add_run(engine, "r-done", created_at=NOW - timedelta(days=1), state="done", total=8, published=8,
            finished_at=NOW - timedelta(hours=20))
    add_run(engine, "r-failed", created_at=NOW - timedelta(days=2), state="failed", total=5, published=1,
            error="broker unreachable")
    engine.dispose()
    env = {"WCML_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/", "WCML_DATABASE_URL": pg_url,
           "WCML_BLOB_URL": f"file://{tmp_path}/blobs", "WCML_API_KEYS": API_KEY,
           "WCML_VAR_DIR": str(tmp_path / "var")}
    pipeline = Pipeline(env, tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    pipeline.start("api", "api", "--bind", url[7:], "--workers", "1", "--no-api-views")  # runs seeded above
    try:
        wait_http(url + "/healthz")
        yield url
    except BaseException:
        print(pipeline.diagnostics())
        raise
    finally:
        pipeline.stop_all()


@pytest.fixture
def page(sync_playwright, api_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.elsewhere = []  # any request that leaves the server
        page.on("request", lambda r: None if r.url.startswith(api_url) else page.elsewhere.append(r.url))
        log_in(page, api_url)
        try:
            yield page
        finally:
            browser.close()


def log_in(page, api_url: str) -> None:
    """The dashboard sends a browser without a session to its login form; a key there starts one."""
    page.goto(api_url + "/")
    assert page.url == api_url + "/login"
    page.fill("input[name=key]", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_url(api_url + "/")


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(page, api_url):
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (
        "wcml_session", True, "Strict", False)  # plain HTTP on loopback: not Secure
    assert API_KEY not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # no script reads it
    page.click("form.logout button")
    page.wait_for_url(api_url + "/login")
    page.goto(api_url + "/")
    assert page.url == api_url + "/login"


def test_api_reference_renders_offline(page, api_url):
    page.goto(api_url + "/")
    page.click("text=reference")
    page.wait_for_url(api_url + "/docs")
    page.wait_for_selector('[data-path="/api/v1/predictions"]', timeout=15000)
    assert page.elsewhere == []  # Swagger UI's assets came from this server


def screenshot(page, tmp_path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copy(path, OUTPUT / name)


def table_rows(page) -> list[dict]:
    """The predictions table as a person reads it, with each confidence bar's drawn share."""
    rows = []
    for row in page.locator("#predictions tr:has(td)").all():
        cells = [c.inner_text().strip() for c in row.locator("td").all()]
        bar = row.locator(".bar").bounding_box()
        fill = row.locator(".bar span").bounding_box()
        rows.append({"issue": cells[1], "task": cells[2], "label": cells[3], "confidence": float(cells[4]),
                     "precision": cells[5], "model": cells[6], "replay": cells[8],
                     "drawn": fill["width"] / bar["width"]})
    return rows


def test_dashboard_shows_predictions_distribution_models_and_replays(page, api_url, tmp_path):
    page.goto(api_url + "/")
    assert page.locator("h1").inner_text() == "webcompat-ml predictions"

    rows = table_rows(page)
    assert len(rows) == len(LIVE)  # live predictions only by default, newest first
    assert [r["issue"] for r in rows] == [f"{p.repo}#{p.number}" for p in LIVE]
    for row, p in zip(rows, LIVE, strict=True):
        assert (row["task"], row["label"], row["model"]) == (p.task, p.label, p.model_version)
        assert row["replay"] == ""
        assert row["precision"] == ("–" if p.precision is None else f"{p.precision:.2f}")  # measured, or none
        assert row["confidence"] == pytest.approx(p.confidence, abs=0.005)
        assert row["drawn"] == pytest.approx(p.confidence, abs=0.02)  # the bar is as long as the number says

    # Label distribution: per task a legend and, per day, the number of predictions and coloured segments.
    for task in ("needsdiagnosis", "issuetype"):
        chart = page.locator("#labels h3", has_text=task)
        assert chart.is_visible()
        mine = [p for p in LIVE if p.task == task]
        legend = chart.locator("xpath=following-sibling::div[@class='legend'][1]").inner_text()
        assert all(p.label in legend for p in mine)
        table = chart.locator("xpath=following-sibling::table[1]")
        per_day = Counter(p.predicted_at[:10] for p in mine)
        for day, count in per_day.items():
            row = table.locator("tr", has_text=day)
            assert row.locator("td.total").inner_text() == str(count)
            segments = row.locator(".stack span").all()
            assert sum(int(s.get_attribute("title").rsplit(": ", 1)[1]) for s in segments) == count
            assert all(s.bounding_box()["width"] > 0 for s in segments)

    models = page.locator("#in-service").inner_text()
    for version in ("m1", "m2", "m3"):
        assert version in models

    runs = {r.locator("td").first.inner_text(): r for r in page.locator("#replays tr:has(td)").all()}
    assert list(runs) == ["r-7", "r-done", "r-failed"]
    assert "running" in runs["r-7"].inner_text() and "4 / 10 (40%)" in runs["r-7"].inner_text()
    bar, fill = (runs["r-7"].locator(selector).bounding_box() for selector in (".bar", ".bar span"))
    assert fill["width"] / bar["width"] == pytest.approx(0.4, abs=0.02)
    assert "done" in runs["r-done"].inner_text() and "8 / 8 (100%)" in runs["r-done"].inner_text()
    assert "broker unreachable" in runs["r-failed"].inner_text()
    screenshot(page, tmp_path, "dashboard.png")
    assert page.elsewhere == []  # works with no network beyond the server


def test_filters_narrow_the_table_and_map_to_the_api(page, api_url, tmp_path):
    page.goto(api_url + "/")
    page.fill("input[name=task]", "issuetype")
    page.fill("input[name=label]", "bug")
    page.fill("input[name=min_confidence]", "0.5")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"task=issuetype"))
    expected = [p for p in LIVE if p.task == "issuetype" and p.label == "bug" and p.confidence >= 0.5]
    rows = table_rows(page)
    assert expected and [r["issue"] for r in rows] == [f"{p.repo}#{p.number}" for p in expected]
    assert all(r["task"] == "issuetype" and r["label"] == "bug" for r in rows)
    assert page.input_value("input[name=task]") == "issuetype"  # the form keeps what was asked
    api = page.locator("p.api code").inner_text()
    assert "task=issuetype" in api and "label=bug" in api and "min_confidence=0.5" in api
    screenshot(page, tmp_path, "dashboard-filtered.png")

    # Following a replay run shows its predictions only.
    page.goto(api_url + "/")
    page.click("#replays a:text('r-7')")
    page.wait_for_url(re.compile(r"replay=r-7"))
    rows = table_rows(page)
    assert len(rows) == len(REPLAYED) and all(r["replay"] == "r-7" and r["model"] == "m3" for r in rows)
    assert page.locator("select[name=replay]").input_value() == "r-7"

    # A bad filter is said on the page, in words, and the table is empty rather than wrong.
    page.fill("input[name=until]", "next tuesday")
    page.click("form.filters button[type=submit]")
    alert = page.locator("[role=alert]")
    assert alert.is_visible() and "until must be an ISO 8601" in alert.inner_text()
    assert table_rows(page) == []
    assert page.elsewhere == []
