"""Ingest against real PostgreSQL: every response code, the log, and the relay to real RabbitMQ."""

import json
import threading
import time
import uuid
from urllib.parse import urlencode

import pika
import pytest
import sqlalchemy as sa

from services.ingest.app import create_app
from services.ingest.event_log import UNPUBLISHED, EventLog
from services.ingest.outbox_relay import RELAY_LOCK, OutboxRelay, _RelayLock
from services.ingest.signature import sign
from services.ingest.webhook import WebhookDelivery
from services.samples import issue_payload
from shared import topology
from shared.broker import PublishError
from shared.broker.rabbitmq import RabbitBroker
from shared.database import create_engine
from shared.messages import EventEnvelope, decode
from tests.octokit import examples
from tests.plans import explain, nodes
from tests.waiting import eventually

SECRET, METRICS_KEY = "ingest-test-secret", "ingest-metrics-key"


@pytest.fixture
def event_log(pg_url):
    engine = create_engine(pg_url)
    yield EventLog(engine)
    engine.dispose()


@pytest.fixture
def client(event_log):
    app = create_app(event_log, [SECRET], max_body_bytes=64 * 1024, api_keys=[f"metrics:{METRICS_KEY}"])
    return app.test_client()


def post(client, payload, event="issues", delivery=None, secret=SECRET, content_type="application/json",
         body=None):
    body = body if body is not None else json.dumps(payload).encode()
    return client.post("/webhooks/github", data=body, headers={
        "Content-Type": content_type, "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "X-Hub-Signature-256": sign(secret, body)})


def rows(event_log):
    with event_log.engine.connect() as conn:
        return conn.execute(sa.text("SELECT delivery_id, event, action, repo, issue_number, sender "
                                    "FROM event_log ORDER BY position")).all()


def test_new_delivery_is_202_with_its_position_and_committed(client, event_log):
    r = post(client, issue_payload(number=4), delivery="d-1")
    assert r.status_code == 202 and r.json["position"] >= 1
    assert rows(event_log) == [("d-1", "issues", "opened", "webcompat/web-bugs", 4, "sample-reporter")]


def test_known_delivery_is_200_and_changes_nothing(client, event_log):
    first = post(client, issue_payload(), delivery="same")
    again = post(client, issue_payload(number=99), delivery="same")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["position"] == first.json["position"]
    assert len(rows(event_log)) == 1


def test_form_encoded_delivery_is_accepted(client, event_log):
    body = urlencode({"payload": json.dumps(issue_payload(number=5))}).encode()
    r = post(client, None, body=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 202 and rows(event_log)[0][4] == 5


@pytest.mark.parametrize("kwargs, status", [
    ({"secret": "wrong"}, 401),
    ({"content_type": "text/plain"}, 415),
    ({"body": b"{truncated"}, 400),
    ({"event": ""}, 400),
    ({"body": b"x" * (64 * 1024 + 1)}, 413),
])
def test_refusals_store_nothing_and_say_why_in_json(client, event_log, kwargs, status):
    r = post(client, issue_payload(), **kwargs)
    assert r.status_code == status
    assert isinstance(r.json["error"], str) and "\n" not in r.json["error"]
    assert rows(event_log) == []


def test_missing_signature_is_401(client, event_log):
    r = client.post("/webhooks/github", data=b"{}", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": "x"})
    assert r.status_code == 401 and rows(event_log) == []


def test_ping_is_answered_200_and_not_logged(client, event_log):
    r = post(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert r.status_code == 200 and rows(event_log) == []


def test_healthz_and_metrics(client):
    assert client.get("/healthz").json == {"status": "ok"}
    post(client, issue_payload())
    assert client.get("/metrics").status_code == 401  # the webhook port's metrics need a key
    text = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"}).get_data(as_text=True)
    assert 'wcml_ingest_deliveries_total{event="issues",outcome="accepted"}' in text


def test_every_octokit_example_is_accepted_logged_and_relayed(client, event_log, amqp_url):
    cases = examples()
    assert len(cases) >= 300
    for i, (event, payload) in enumerate(cases):
        r = post(client, payload, event=event, delivery=f"octo-{i}")
        assert r.status_code == (200 if event == "ping" else 202), (event, r.json)
    logged = rows(event_log)
    expected = [(f"octo-{i}", e, p.get("action"), (p.get("repository") or {}).get("full_name"))
                for i, (e, p) in enumerate(cases) if e != "ping"]
    assert [r[:4] for r in logged] == expected

    broker = RabbitBroker(amqp_url)
    topology.declare(broker)
    relay = OutboxRelay(event_log, broker)
    while relay.relay_once():
        pass
    assert event_log.lag()[0] == 0
    assert broker.queue_depth("events.dispatcher") == len(expected)
    received = broker.get("events.dispatcher", len(expected))
    envelopes = [decode(d.body, EventEnvelope) for d in received]
    assert [e.delivery_id for e in envelopes] == [e[0] for e in expected]
    assert all(d.routing_key == e.routing_key for d, e in zip(received, envelopes, strict=True))
    broker.settle(received, requeue=False)
    broker.close()


def test_the_relays_next_read_starts_after_what_it_published(event_log, amqp_url):
    """Every published event leaves an entry in the unpublished index until a vacuum; the relay's
    read starts after the last position it published, so it touches none of them and its cost does
    not grow with the log (without the bound it read every entry: here 1,000)."""
    event_log.append_many([delivery(f"d-{i}", i) for i in range(1000)])
    broker = RabbitBroker(amqp_url)
    topology.declare(broker)
    relay = OutboxRelay(event_log, broker, batch=100)
    while relay.relay_once():
        pass
    assert relay.published_through == 1000 and event_log.lag(relay.published_through) == (0, 0.0)
    event_log.append_many([delivery("d-last")])
    with event_log.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_indexscan = off")  # the bitmap scan chosen on the benchmark machine
        plan = explain(conn, UNPUBLISHED, {"limit": 100, "after": relay.published_through}, analyze=True)
    [index] = [node for node in nodes(plan) if node.get("Index Name") == "ix_event_log_unpublished"]
    assert (index["Node Type"], index["Actual Rows"], plan["Actual Rows"]) == ("Bitmap Index Scan", 1, 1)
    assert [e.delivery_id for e in event_log.unpublished(100, after=relay.published_through)] == ["d-last"]
    broker.close()


def test_relay_resumes_after_the_broker_was_unreachable(client, event_log, amqp_url):
    for i in range(20):
        assert post(client, issue_payload(number=i)).status_code == 202
    dead = RabbitBroker("amqp://guest:guest@127.0.0.1:1/", connect_attempts=1)
    relay = OutboxRelay(event_log, dead)
    with pytest.raises((PublishError, OSError, pika.exceptions.AMQPError)):
        relay.relay_once()
    assert event_log.lag()[0] == 20  # nothing marked published without a confirm

    broker = RabbitBroker(amqp_url)
    topology.declare(broker)
    stop = threading.Event()
    thread = threading.Thread(target=OutboxRelay(event_log, broker).run, args=(stop,))
    thread.start()
    try:
        eventually(lambda: broker.queue_depth("events.dispatcher") == 20, timeout=10, interval=0.05,
                   message="the relay to publish the 20 events")
    finally:
        stop.set()
        thread.join(5)
    assert broker.queue_depth("events.dispatcher") == 20
    assert event_log.lag()[0] == 0
    broker.close()


def test_an_idle_relay_is_woken_by_the_commit_of_another_process(client, event_log, pg_url, amqp_url):
    """Ingest's HTTP workers are other processes than the relay: the log's NOTIFY wakes it, so an event
    goes out at once, not at the relay's next poll (here half a minute away)."""
    broker = RabbitBroker(amqp_url)
    topology.declare(broker)
    stop = threading.Event()
    thread = threading.Thread(target=OutboxRelay(event_log, broker, idle=30).run, args=(stop,))
    thread.start()
    try:
        eventually(lambda: not lock_is_free(pg_url), timeout=10, interval=0.05, message="the relay to start")
        time.sleep(0.5)  # past its first look at the log: idle now
        assert post(client, issue_payload(number=1)).status_code == 202
        eventually(lambda: broker.queue_depth("events.dispatcher") == 1, timeout=5, interval=0.02,
                   message="the notice to wake the relay")
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    broker.close()


def delivery(delivery_id: str, number: int = 1) -> WebhookDelivery:
    return WebhookDelivery(delivery_id, "1", "issues", "opened", "o/r", number, "someone", "{}")


def test_a_batch_takes_positions_in_its_order_and_a_repeat_keeps_its_first(event_log):
    known = event_log.append(delivery("known"))
    appended = event_log.append_many([delivery(d) for d in ("b1", "b2", "b1", "known", "b3")])
    assert [a.new for a in appended] == [True, True, False, False, True]
    assert appended[0].position < appended[1].position < appended[4].position
    assert appended[2].position == appended[0].position and appended[3].position == known.position


def test_positions_become_visible_in_order_under_concurrent_appends(event_log, pg_url):
    """A follower of the log by position (the relay, a replay) must never see a position appear below
    one it has already read: appends take the append lock before any row (and position) exists."""
    stop, regressions, seen = threading.Event(), [], set()

    def follow() -> None:
        newest, last = 0, False
        while not last:
            last = stop.is_set()  # one more read after the writers are done: every row is committed
            with event_log.engine.connect() as conn:
                visible = conn.execute(sa.text("SELECT position FROM event_log ORDER BY position")).scalars()
                visible = list(visible)
            regressions.extend(p for p in visible if p < newest and p not in seen)
            seen.update(visible)
            newest = max(visible, default=0)

    def append(worker: int) -> None:
        engine = create_engine(pg_url)
        log = EventLog(engine)
        for batch in range(25):
            log.append_many([delivery(f"w{worker}-{batch}-{i}", i) for i in range(4)])
        engine.dispose()

    follower = threading.Thread(target=follow)
    follower.start()
    writers = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    stop.set()
    follower.join(10)
    assert len(seen) == 400
    assert regressions == []


def lock_is_free(pg_url) -> bool:
    """Whether a session of another engine can take the relay lock (and gives it back)."""
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": RELAY_LOCK}).scalar()
            if taken:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": RELAY_LOCK})
            return taken
    finally:
        engine.dispose()


def test_a_released_relay_lock_is_free_though_its_engine_lives_on(event_log, pg_url):
    lock = _RelayLock(event_log.engine)
    assert lock.acquire()
    assert lock.acquire()  # held: asking again is a no-op
    assert not lock_is_free(pg_url)
    lock.release()
    assert lock_is_free(pg_url)  # not kept by a pooled session after release
    for _ in range(5):  # this process gets it back, whichever pooled connections are about
        with event_log.engine.connect(), event_log.engine.connect():
            pass
        assert lock.acquire()
        lock.release()


def test_a_standby_relay_takes_over_when_the_publishing_one_stops(client, event_log, pg_url, amqp_url):
    broker = RabbitBroker(amqp_url)
    topology.declare(broker)
    other_engine = create_engine(pg_url)
    first, second = threading.Event(), threading.Event()
    threads = [threading.Thread(target=OutboxRelay(event_log, broker).run, args=(first,)),
               threading.Thread(target=OutboxRelay(EventLog(other_engine), broker).run, args=(second,))]
    threads[0].start()
    try:
        eventually(lambda: not lock_is_free(pg_url), timeout=10, interval=0.05,
                   message="the first relay to take the lock")
        threads[1].start()
        assert post(client, issue_payload(number=1)).status_code == 202
        eventually(lambda: broker.queue_depth("events.dispatcher") == 1, timeout=10, interval=0.05,
                   message="the first relay to publish event 1")
        first.set()
        threads[0].join(5)
        assert post(client, issue_payload(number=2)).status_code == 202
        # the standby retries the lock once a second
        eventually(lambda: broker.queue_depth("events.dispatcher") == 2, timeout=10, interval=0.05,
                   message="the standby relay to take over and publish event 2")
    finally:
        first.set()
        second.set()
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join(5)
    assert broker.queue_depth("events.dispatcher") == 2
    assert event_log.lag()[0] == 0
    other_engine.dispose()
    broker.close()


def test_a_relay_whose_session_ends_takes_the_lock_again_and_goes_on(client, event_log, pg_url, amqp_url):
    """The relay reads and marks the log on its lock's session: a PostgreSQL restart that ends that
    session ends both, and the relay takes a new one (the lock with it) and publishes on."""
    broker = RabbitBroker(amqp_url)
    topology.declare(broker)
    stop = threading.Event()
    thread = threading.Thread(target=OutboxRelay(event_log, broker).run, args=(stop,))
    thread.start()
    admin = create_engine(pg_url)
    holder = sa.text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :k AND granted")
    try:
        eventually(lambda: not lock_is_free(pg_url), timeout=10, interval=0.05, message="the relay to start")
        assert post(client, issue_payload(number=1)).status_code == 202
        eventually(lambda: broker.queue_depth("events.dispatcher") == 1, timeout=10, interval=0.05,
                   message="event 1 published")
        with admin.connect() as conn:
            [first] = conn.execute(holder, {"k": RELAY_LOCK}).scalars().all()
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
        for number in (2, 3):
            assert post(client, issue_payload(number=number)).status_code == 202
        eventually(lambda: broker.queue_depth("events.dispatcher") == 3, timeout=20, interval=0.05,
                   message="events 2 and 3 published on a new session")
        with admin.connect() as conn:
            assert conn.execute(holder, {"k": RELAY_LOCK}).scalars().all() not in ([], [first])
    finally:
        stop.set()
        thread.join(10)
        admin.dispose()
    assert not thread.is_alive()
    assert event_log.lag()[0] == 0
    broker.close()
