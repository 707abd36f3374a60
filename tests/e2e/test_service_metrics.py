"""Every process of the distributed mode serves its own /metrics and /healthz, and its own counters move.

Each declared service runs as a process of its own (those usually started beside another, too: ingest
with ``--no-relay`` and ``wcml relay``, store with ``--no-latest`` and ``wcml latest``, api with
``--no-api-views`` and ``wcml api-views``; the follower polling a fake GitHub on loopback), on real
RabbitMQ, PostgreSQL and S3 (moto), each with a metrics port of its own (``tests.processes.Pipeline``).
Signed webhooks go in; every process is scraped before and after: what it counts is there and has
grown, and no process serves another's counters.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.samples import issue_payload, signed_request
from shared.event_routes import load_rules, tasks_of
from shared.topology import SERVICES
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo
from tests.harness import free_port
from tests.processes import Pipeline, get_json, wait_http
from tests.waiting import eventually

SECRET, API_KEY = "metrics-webhook-secret", "metrics-api-key"
WEBHOOKS = 4
TASKS = tasks_of(load_rules(None))
# A policy that fires on every issuetype prediction: the dry run records an action for each, and
# reports it on wcml.state, which `wcml api-views` reads.
POLICY = "\n".join(f'[[rule]]\ntask = "issuetype"\nlabel = "{label}"\nmin_confidence = 0.0\n'
                   f'add_labels = ["{label}"]\n' for label in ("bug", "feature", "question"))
ISSUE_ROUTE = "/api/v1/issues/<owner>/<repo>/<int:number>"  # a route's rule is its label, not the path
pytestmark = pytest.mark.e2e

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, by sample name: (labels, value)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 where there is none yet)."""
    return sum(value for found, value in samples.get(name, []) if labels.items() <= found.items())


# Each process's own counters: (sample name, labels, at least how much it grows from the webhooks).
OWN: dict[str, list[tuple[str, dict[str, str], Callable[[int], int]]]] = {
    "ingest": [("wcml_ingest_deliveries_total", {"outcome": "accepted"}, lambda n: n),
               ("wcml_http_requests_total", {"route": "/webhooks/github", "status": "202"}, lambda n: n)],
    "relay": [("wcml_relay_events_published_total", {}, lambda n: n)],
    "dispatcher": [("wcml_dispatcher_routed_tasks_total", {}, lambda n: n * len(TASKS)),
                   ("wcml_consumer_messages_total", {"queue": "events.dispatcher"}, lambda n: n)],
    **{f"predictor-{task}": [("wcml_predictor_predictions_total", {"task": task}, lambda n: n),
                             ("wcml_predictor_predict_duration_seconds_count", {"task": task}, lambda n: 1),
                             ("wcml_consumer_messages_total", {"queue": f"tasks.{task}"}, lambda n: 1)]
       for task in TASKS},
    "store": [("wcml_store_predictions_total", {"outcome": "stored"}, lambda n: n * len(TASKS)),
              ("wcml_store_lag_seconds_count", {}, lambda n: n * len(TASKS)),
              ("wcml_store_documents_written_total", {"kind": "history"}, lambda n: 1)],
    "latest": [("wcml_store_documents_written_total", {"kind": "latest"}, lambda n: n * len(TASKS))],
    "actions": [("wcml_actions_results_total", {"source": "live"}, lambda n: n * len(TASKS)),
                ("wcml_consumer_messages_total", {"queue": "results.actions"}, lambda n: 1)],
    "api": [("wcml_http_requests_total", {"route": ISSUE_ROUTE, "method": "GET"}, lambda n: 1)],
    "api-views": [("wcml_consumer_messages_total", {"queue": "actions.api"}, lambda n: 1)],
    "follow": [("wcml_follow_ticks_total", {}, lambda n: 1)],  # polling the fake GitHub each 0.5 s
}
# What only another process counts: nothing of it on this one's page (a sample name's start, labels).
NOT_HERE = {"ingest": ("wcml_relay_", {}), "relay": ("wcml_ingest_", {}), "api": ("wcml_consumer_", {}),
            "store": ("wcml_store_documents_written_total", {"kind": "latest"}),
            "latest": ("wcml_store_predictions_total", {})}


@pytest.fixture
def services(amqp_url, pg_url, s3_url, s3_endpoint, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    env = {"WCML_BROKER_URL": amqp_url, "WCML_DATABASE_URL": pg_url, "WCML_BLOB_URL": s3_url,
           "WCML_WEBHOOK_SECRETS": SECRET, "WCML_API_KEYS": API_KEY, "WCML_ACTIONS_POLICY": str(policy),
           "WCML_MODELS_DIR": str(tmp_path / "models"), "WCML_VAR_DIR": str(tmp_path / "var"),
           **s3_endpoint.env}
    p = Pipeline(env, tmp_path)
    trained = p.run("models", "demo")
    assert trained.returncode == 0, trained.stderr
    p.ingest_url, p.api_url = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    ingest_metrics, api_metrics = (f"127.0.0.1:{free_port()}" for _ in range(2))  # no key there
    p.start("ingest", "ingest", "--bind", p.ingest_url[7:], "--workers", "2", "--no-relay",
            "--metrics-bind", ingest_metrics)
    p.start("relay", "relay")
    p.start("dispatcher", "dispatcher")
    for task in TASKS:
        p.start(f"predictor-{task}", "predictor", "--task", task)
    p.start("store", "store", "--no-latest")
    p.start("latest", "latest")
    p.start("actions", "actions")
    p.start("api", "api", "--bind", p.api_url[7:], "--workers", "1", "--no-api-views",
            "--metrics-bind", api_metrics)
    p.start("api-views", "api-views")
    github = FakeGitHub().__enter__()
    github.add_repo(SyntheticRepo(issues=5, events_per_issue=1))
    p.start("follow", "follow", env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url,
                                     "WCML_GITHUB_FOLLOW": "webcompat/web-bugs",
                                     "WCML_GITHUB_FOLLOW_EVERY": "0.5"})
    p.pages = {"ingest": f"http://{ingest_metrics}/metrics", "api": f"http://{api_metrics}/metrics",
               **{name: p.metrics_url(name) for name in p.procs if name not in ("ingest", "api")}}
    p.health = {name: page.replace("/metrics", "/healthz") for name, page in p.pages.items()}
    p.health.update(ingest=p.ingest_url + "/healthz", api=p.api_url + "/healthz")  # on their HTTP ports
    try:
        for health in p.health.values():  # a consumer serves its port once built (a predictor: model loaded)
            wait_http(health, timeout=90)
        yield p
    except BaseException:
        print(p.diagnostics())
        raise
    finally:
        codes = p.stop_all()
        github.__exit__(None, None, None)
    if any(codes.values()):
        print(codes, p.diagnostics())
    assert not any(codes.values()), codes


def test_every_declared_service_runs_here_with_a_page_of_its_own(services):
    running = {name.split("-")[0] if name.startswith("predictor-") else name for name in services.pages}
    assert running == {spec.name for spec in SERVICES}
    ports = {page.rsplit(":", 1)[1] for page in services.pages.values()}
    assert len(ports) == len(services.pages), services.pages  # each process a port of its own


def test_each_process_serves_its_own_counters_and_they_grow_under_load(services):
    before = {name: scrape(page) for name, page in services.pages.items()}
    for name, health in services.health.items():
        with urllib.request.urlopen(health, timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok"}, name

    for i in range(WEBHOOKS):
        payload = issue_payload(number=9100 + i, title=f"example{i}.com - video does not play",
                                body="The player stays black in Firefox; it works in Chrome.")
        request = signed_request(services.ingest_url + "/webhooks/github", SECRET, "issues", payload,
                                 delivery_id=f"metrics-{i}")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
    status, _ = get_json(f"{services.api_url}/api/v1/issues/webcompat/web-bugs/9100", API_KEY)
    assert status in (200, 404)  # 404 until a prediction of it is stored: either is counted

    def grown(name: str) -> Callable[[], Samples]:
        def check() -> Samples:
            after = scrape(services.pages[name])
            for sample, labels, least in OWN[name]:
                moved = total(after, sample, **labels) - total(before[name], sample, **labels)
                assert moved >= least(WEBHOOKS), f"{name}: {sample}{labels} grew by {moved}"
            return after
        return check

    for name in OWN:
        after = eventually(grown(name), timeout=90, interval=0.5,
                           message=lambda name=name: f"{name}'s counters to grow\n{services.diagnostics()}")
        if name not in ("ingest", "api"):  # one process: its own CPU and memory too
            assert total(after, "process_resident_memory_bytes") > 0, name
        if name in NOT_HERE:
            prefix, labels = NOT_HERE[name]
            strays = [(sample, found) for sample, values in after.items() if sample.startswith(prefix)
                      for found, value in values if labels.items() <= found.items() and value]
            assert not strays, f"{name} serves another process's counters: {strays}"
