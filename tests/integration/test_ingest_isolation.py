"""One bad delivery never costs its neighbours: valid ones sent beside poisoned ones are all stored."""

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from werkzeug.serving import make_server

from services.ingest.app import create_app
from services.ingest.event_log import EventLog
from services.ingest.group_commit import GroupCommitter, Unstorable
from services.ingest.signature import sign
from services.ingest.webhook import WebhookDelivery
from services.samples import issue_payload
from shared.database import create_engine, migrate
from tests.harness import free_port

SECRET = "isolation-secret"
POISONS = [
    ("issue.number >= 2**63", lambda p: p.replace('"number": 1', '"number": 9223372036854775808', 1)),
    ("lone surrogate in action", lambda p: p.replace('"action": "opened"', '"action": "\\ud800"', 1)),
    ("lone surrogate in repository.full_name",
     lambda p: p.replace('"full_name": "webcompat/web-bugs"', '"full_name": "a/\\udfff"', 1)),
    ("lone surrogate in sender.login",
     lambda p: p.replace('"sender": {"login": "sample-reporter"', '"sender": {"login": "\\ud83d"', 1)),
    ("lone surrogate in issue.title",
     lambda p: p.replace('"title": "', '"title": "x\\udbff ', 1)),
    ("lone surrogate in an object key",
     lambda p: p.replace('"issue": {', '"issue": {"\\udc00": 1, ', 1)),
    ("nested 100,000 deep", lambda p: "[" * 100_000 + "]" * 100_000),
    ("an integer of 5,000 digits", lambda p: p.replace('"number": 1', '"number": ' + "7" * 5000, 1)),
]


def post(url: str, body: bytes, delivery: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(SECRET, body)})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_valid_deliveries_beside_poisoned_ones_are_all_stored(pg_url):
    migrate(pg_url)
    engine = create_engine(pg_url)
    server = make_server("127.0.0.1", free_port(), create_app(EventLog(engine), [SECRET], 25 * 2**20),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/github"
    template = json.dumps(issue_payload(number=1))
    for name, poison in POISONS:
        assert poison(template) != template, name  # each poison really changes the payload
    sends = [(f"valid-{i}", json.dumps(issue_payload(number=i + 1)).encode()) for i in range(300)]
    sends += [(f"poison-{i}", POISONS[i % len(POISONS)][1](template).encode()) for i in range(20)]
    sends.sort(key=lambda s: hash(s[0]))  # interleaved, so poisoned ones share commits with valid ones
    try:
        with ThreadPoolExecutor(32) as pool:
            codes = dict(zip((d for d, _ in sends), pool.map(lambda s: post(url, s[1], s[0]), sends),
                             strict=True))
    finally:
        server.shutdown()
    with engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT delivery_id FROM event_log")).scalars())
    valid = {d for d in codes if d.startswith("valid")}
    report = {"attempted": len(sends), "valid_2xx": sum(codes[d] in (200, 202) for d in valid),
              "poisoned_4xx": sum(400 <= codes[d] < 500 for d in codes if d.startswith("poison")),
              "lost": len(valid - stored), "stored_poisoned": len(stored - valid)}
    print(f"isolation: {report}")
    assert report == {"attempted": 320, "valid_2xx": 300, "poisoned_4xx": 20, "lost": 0, "stored_poisoned": 0}
    engine.dispose()


def test_a_commit_the_database_refuses_is_split_until_only_the_guilty_delivery_fails(pg_url):
    """Defence in depth behind the parser's checks: a value the parser let through and the database
    refuses (here an issue number past INTEGER) fails its own delivery only."""
    migrate(pg_url)
    engine = create_engine(pg_url)
    committer = GroupCommitter(EventLog(engine), max_batch=64)
    deliveries = [WebhookDelivery(f"d{i}", None, "issues", "opened", "a/b", 2**40 if i in (7, 30) else i, "s",
                                  "{}") for i in range(60)]
    outcomes = {}

    def append(d):
        try:
            outcomes[d.delivery_id] = committer.append(d).new
        except Unstorable as exc:
            outcomes[d.delivery_id] = str(exc)

    with ThreadPoolExecutor(60) as pool:
        list(pool.map(append, deliveries))
    refused = {d for d, outcome in outcomes.items() if outcome is not True}
    assert refused == {"d7", "d30"}, outcomes
    assert "cannot hold" in outcomes["d7"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM event_log")).scalar_one() == 58
    engine.dispose()


def test_the_committer_replaces_a_connection_killed_behind_its_back(pg_url):
    """It keeps one connection (no ping per commit): when the server ends that session, the next
    batch is committed on a new one, and the sender sees no error."""
    migrate(pg_url)
    engine = create_engine(pg_url)
    committer = GroupCommitter(EventLog(engine))
    delivery = lambda i: WebhookDelivery(f"k{i}", None, "issues", "opened", "a/b", i, "s", "{}")  # noqa: E731
    assert committer.append(delivery(1)).new
    kept = committer._conn.connection.dbapi_connection.get_backend_pid()
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": kept}).scalar_one()
    assert committer.append(delivery(2)).new
    assert committer._conn.connection.dbapi_connection.get_backend_pid() != kept
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM event_log")).scalar_one() == 2
    engine.dispose()
