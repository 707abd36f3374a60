"""Who may do what on the query API and the dashboard: scopes (401/403), the dashboard's login, session
cookie and CSRF tokens, per-key rate limits (429 with Retry-After), /metrics behind a key or on its own
listener, 405 with Allow, and an id the API answered with readable at once. On SQLite, as the embedded
mode serves it; test_store_api runs the rest of the API on PostgreSQL too."""

from __future__ import annotations

import html
import re

import pytest

from services.api.rate_limit import RateLimit, TokenBuckets
from services.api.sessions import COOKIE
from shared.access import ApiKeys
from shared.database import create_engine
from shared.http import metrics_app
from shared.settings import SettingsError, load
from tests.builders import api_app

READER, OPERATOR, SCRAPER, BARE = "reader-key-0123456789", "operator-key-0123456789", "scraper-key-0123", \
    "bare-key-0123456789"
KEYS = (f"read:{READER}", f"operate:{OPERATOR}", f"metrics:{SCRAPER}", BARE)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def engine(sqlite_url):
    engine = create_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine):
    return api_app(engine, KEYS).test_client()


# -- scopes --------------------------------------------------------------------------------------

def one_line_error(answer) -> str:
    assert set(answer.json) == {"error"} and "\n" not in answer.json["error"]
    return answer.json["error"]


@pytest.mark.parametrize("key", [READER, OPERATOR, BARE])
def test_reading_needs_the_read_scope(client, key):
    for path in ("/api/v1/predictions", "/api/v1/models", "/api/v1/replays", "/api/v1/actions"):
        assert client.get(path, headers=bearer(key)).status_code == 200, (key, path)


def test_a_metrics_key_reads_nothing_but_metrics(client):
    answer = client.get("/api/v1/predictions", headers=bearer(SCRAPER))
    assert answer.status_code == 403
    assert "'read' scope" in one_line_error(answer) and SCRAPER not in answer.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer(SCRAPER)).status_code == 200


@pytest.mark.parametrize("method, path, body", [
    ("post", "/api/v1/replays", {"tasks": ["issuetype"]}),
    ("post", "/api/v1/issues/webcompat/web-bugs/7/score", None),
])
def test_changing_something_needs_the_operate_scope(client, method, path, body):
    refused = getattr(client, method)(path, json=body, headers=bearer(READER))
    assert refused.status_code == 403
    error = one_line_error(refused)
    assert "'operate' scope" in error and "it has 'read'" in error
    for key in (OPERATOR, BARE):  # a key given without a scope has every scope, as before scopes
        assert getattr(client, method)(path, json=body, headers=bearer(key)).status_code == 202, key


def test_an_unknown_key_is_401_before_any_scope(client):
    answer = client.post("/api/v1/replays", json={}, headers=bearer("nobody"))
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_scopes_are_ranked():
    keys = ApiKeys(KEYS)
    reader, operator, scraper = (keys.caller(f"Bearer {k}") for k in (READER, OPERATOR, SCRAPER))
    assert (reader.may("read"), reader.may("operate"), reader.may("metrics")) == (True, False, True)
    assert operator.may("read") and operator.may("operate") and scraper.may("metrics")
    assert not scraper.may("read") and keys.caller(f"Bearer {BARE}").scope == "operate"
    assert keys.caller("Bearer read:" + READER) is None  # the scope is not part of the key


@pytest.mark.parametrize("entry, said", [
    ("raed:abcdef", "entry 2 names scope 'raed'"),
    ("read:", "entry 2 has no key after 'read:'"),
    ("sk-live/secret+value:tail", "entry 2 names scope '…'"),
])
def test_a_malformed_key_entry_stops_the_start_naming_its_place_not_its_text(tmp_path, entry, said):
    env = {"WCML_VAR_DIR": str(tmp_path), "WCML_API_KEYS": f"good-key,{entry}"}
    with pytest.raises(SettingsError) as raised:
        load(env, needs=())
    assert said in str(raised.value) and str(raised.value).startswith("WCML_API_KEYS: ")
    assert entry.rpartition(":")[2] not in str(raised.value) or not entry.rpartition(":")[2]


def test_rate_and_metrics_settings(tmp_path):
    base = {"WCML_VAR_DIR": str(tmp_path)}
    default = load(base, needs=())
    assert (default.api_rate, default.api_burst, default.metrics_bind) == (20.0, 100, "")
    mine = load({**base, "WCML_API_RATE": "2.5", "WCML_API_BURST": "5",
                 "WCML_METRICS_BIND": "127.0.0.1:9100"}, needs=())
    assert (mine.api_rate, mine.api_burst, mine.metrics_bind) == (2.5, 5, "127.0.0.1:9100")
    for name, value in (("WCML_API_RATE", "-1"), ("WCML_API_RATE", "fast"), ("WCML_API_BURST", "0"),
                        ("WCML_METRICS_BIND", "9100"), ("WCML_METRICS_BIND", "host:99999")):
        with pytest.raises(SettingsError, match=name):
            load({**base, name: value}, needs=())


# -- rate limits ---------------------------------------------------------------------------------

def test_a_key_past_its_rate_gets_429_with_retry_after_and_others_do_not(engine):
    client = api_app(engine, KEYS, rate_limit=RateLimit(rate=0.5, burst=2)).test_client()
    for _ in range(2):
        assert client.get("/api/v1/models", headers=bearer(READER)).status_code == 200
    over = client.get("/api/v1/models", headers=bearer(READER))
    assert over.status_code == 429 and over.headers["Retry-After"] == "2"  # 1 token at 0.5 a second
    assert "rate" in one_line_error(over)
    assert client.get("/api/v1/models", headers=bearer(OPERATOR)).status_code == 200  # its own bucket
    dashboard = client.get("/", headers=bearer(READER))  # the dashboard draws on the same bucket
    assert dashboard.status_code == 429 and dashboard.mimetype == "text/plain"
    assert "Retry-After" in dashboard.headers


def test_token_bucket_refills_at_its_rate():
    now = [100.0]
    buckets = TokenBuckets(RateLimit(rate=2, burst=3), clock=lambda: now[0])
    assert [buckets.take("k") for _ in range(4)] == [0, 0, 0, 1]
    now[0] += 0.5  # one token back
    assert (buckets.take("k"), buckets.take("k")) == (0, 1)
    now[0] += 10  # never more than the burst
    assert [buckets.take("k") for _ in range(4)] == [0, 0, 0, 1]
    assert TokenBuckets(RateLimit()).take("k") == 0  # rate 0: no limit


# -- the dashboard: login, session cookie, CSRF ----------------------------------------------------

def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def cookie_header(answer) -> str:
    (header,) = [h for h in answer.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    return header


def log_in(client, key: str = READER, **kwargs):
    form = client.get("/login", **kwargs)
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    return client.post("/login", data={"key": key, "csrf": csrf_of(form.get_data(as_text=True))}, **kwargs)


def test_the_dashboard_sends_a_browser_without_a_session_to_log_in(client):
    answer = client.get("/?task=issuetype")
    assert answer.status_code == 303 and answer.headers["Location"] == "login"


def test_login_sets_an_http_only_strict_cookie_and_logout_ends_it(client):
    answer = log_in(client)
    assert answer.status_code == 303 and answer.headers["Location"] == "./"
    header = cookie_header(answer)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" not in header
    assert READER not in header and "Path=/" in header
    page = client.get("/")
    assert page.status_code == 200 and "Recent predictions" in page.get_data(as_text=True)
    token = csrf_of(page.get_data(as_text=True))
    assert client.post("/logout", data={"csrf": "not-the-token"}).status_code == 403  # forged: stays in
    assert client.get("/").status_code == 200
    out = client.post("/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["Location"] == "login"
    assert client.get("/").status_code == 303


@pytest.mark.parametrize("how", [{"base_url": "https://localhost"},
                                 {"headers": {"X-Forwarded-Proto": "https"}}])
def test_the_cookie_is_secure_over_https(client, how):
    assert "; Secure" in cookie_header(log_in(client, **how))


def test_login_refuses_a_form_without_its_token_and_an_unknown_key(client):
    client.get("/login")
    forged = client.post("/login", data={"key": READER, "csrf": "from-another-site"})
    assert forged.status_code == 403 and forged.mimetype == "text/plain"
    assert client.get("/").status_code == 303  # not logged in
    wrong = log_in(client, "not-a-key")
    assert wrong.status_code == 401 and "not a known API key" in wrong.get_data(as_text=True)
    scraper = log_in(client, SCRAPER)
    assert scraper.status_code == 403 and "'read' scope" in html.unescape(scraper.get_data(as_text=True))
    assert client.get("/").status_code == 303


def test_a_login_replaces_the_pre_login_token(client):
    form = client.get("/login")
    before = csrf_of(form.get_data(as_text=True))
    log_in(client)
    assert csrf_of(client.get("/").get_data(as_text=True)) != before


def test_a_forged_or_stale_session_is_no_session(client, engine):
    log_in(client)
    value = client.get_cookie(COOKIE).value
    client.set_cookie(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/").status_code == 303
    client.set_cookie(COOKIE, value)
    assert client.get("/").status_code == 200
    rotated = api_app(engine, (f"read:{READER}", "another-key")).test_client()  # the keys changed
    rotated.set_cookie(COOKIE, value)
    assert rotated.get("/").status_code == 303


def test_a_session_does_not_open_the_api(client):
    log_in(client)
    assert client.get("/api/v1/models").status_code == 401  # the API takes keys only: no CSRF there


def test_the_dashboard_links_the_offline_api_reference(client):
    log_in(client)
    assert 'href="docs"' in client.get("/").get_data(as_text=True)
    page = client.get("/docs")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert not re.search(r'(src|href)="(https?:)?//', page.get_data(as_text=True))  # nothing from elsewhere
    for asset, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                        ("init.js", "text/javascript")):
        answer = client.get(f"/docs/{asset}")
        assert answer.status_code == 200 and answer.mimetype == kind and len(answer.get_data()) > 100, asset
    assert client.get("/docs/../../etc/passwd").status_code == 404
    assert client.get("/docs/index.html").status_code == 404


# -- /metrics, 405, an id readable at once -------------------------------------------------------

def test_metrics_need_a_key_on_the_service_port_and_none_on_their_own_listener(client):
    refused = client.get("/metrics")
    assert refused.status_code == 401 and "WCML_METRICS_BIND" in one_line_error(refused)
    assert client.get("/metrics", headers=bearer(READER)).status_code == 200
    alone = metrics_app().test_client()
    answer = alone.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    assert alone.get("/api/v1/models", headers=bearer(READER)).status_code == 404  # nothing else there


def test_405_says_which_methods_are_allowed(client):
    for path, allowed in (("/api/v1/predictions", {"GET", "HEAD", "OPTIONS"}),
                          ("/logout", {"POST", "OPTIONS"}),
                          ("/api/v1/replays", {"GET", "HEAD", "OPTIONS", "POST"})):
        answer = client.delete(path, headers=bearer(OPERATOR))
        assert answer.status_code == 405, path
        assert {m.strip() for m in answer.headers["Allow"].split(",")} == allowed, path


def test_a_requested_replay_is_readable_at_once(client):
    asked = client.post("/api/v1/replays", json={"tasks": ["issuetype"]}, headers=bearer(OPERATOR))
    assert asked.status_code == 202 and asked.json["state"] == "requested"
    read = client.get(f"/api/v1/replays/{asked.json['id']}", headers=bearer(READER))
    assert read.status_code == 200
    assert (read.json["state"], read.json["id"]) == ("requested", asked.json["id"])
