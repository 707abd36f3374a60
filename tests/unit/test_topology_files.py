"""compose.yaml and the Kubernetes manifests run what the system's declaration says, nothing more
(``tests/deployment_topology.py``); a service declared and not added to them fails here, named."""

from __future__ import annotations

import copy
from functools import cache

import pytest
import yaml

from shared import topology
from shared.event_routes import load_rules, tasks_of
from tests import declared_extra
from tests.deploy_tools import DEPLOY, ROOT, documents, overlays, render
from tests.deployment_topology import differences, metrics_port_differences

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
TASKS = tasks_of(load_rules(None))
OVERLAYS = [p.name for p in overlays()]


@cache
def rendered(name: str) -> tuple[dict, ...]:
    return tuple(documents(render(DEPLOY / "overlays" / name)))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_compose_and_each_overlay_run_every_declared_service_and_nothing_else(overlay):
    assert differences(COMPOSE, rendered(overlay), TASKS) == []


def test_a_declared_service_missing_from_the_files_is_named(monkeypatch):
    monkeypatch.setattr(topology, "SERVICES", (*topology.SERVICES, declared_extra.AUDIT))
    assert differences(COMPOSE, rendered("production"), TASKS) == [
        "compose.yaml: the declared service `audit` runs nowhere (no `audit` running `wcml audit`)",
        "deploy: the declared service `audit` runs nowhere (no `wcml-audit` running `wcml audit`)",
    ]


def test_a_service_run_beside_another_must_run_somewhere():
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["ingest"]["command"].append("--no-relay")
    assert differences(compose, rendered("production"), TASKS) == [
        "compose.yaml: the declared service `relay` runs nowhere (no `relay` running `wcml relay`)"]
    compose["services"]["relay"] = {**compose["services"]["dispatcher"], "command": ["relay"]}
    assert differences(compose, rendered("production"), TASKS) == []


def test_what_the_declaration_does_not_have_is_extra():
    compose = copy.deepcopy(COMPOSE)
    dispatcher = compose["services"]["dispatcher"]
    compose["services"]["predictor-spam"] = {**dispatcher, "command": ["predictor", "--task", "spam"]}
    compose["services"]["cleaner"] = {**dispatcher, "command": ["cleaner"]}
    compose["services"]["router"] = compose["services"].pop("dispatcher")
    manifests = copy.deepcopy(list(rendered("production")))
    scaler = next(d for d in manifests if d["kind"] == "ScaledObject")
    scaler["spec"]["triggers"][0]["metadata"]["queueName"] = "tasks.spam"
    assert differences(compose, manifests, TASKS) == [
        "compose.yaml: `predictor-spam` runs predictor for task 'spam', which no route names "
        f"(routed: {', '.join(TASKS)})",
        "compose.yaml: `cleaner` runs `wcml cleaner`, which is no declared service or job",
        "compose.yaml: `router` runs `dispatcher`: name it `dispatcher`",
        f"deploy: `{scaler['metadata']['name']}` scales on queue `tasks.spam`, which is not declared",
    ]


def test_a_scaler_on_a_queue_its_workload_does_not_read_is_reported():
    manifests = copy.deepcopy(list(rendered("production")))
    scaler = next(d for d in manifests if d["kind"] == "ScaledObject")
    target = scaler["spec"]["scaleTargetRef"]["name"]
    scaler["spec"]["triggers"][0]["metadata"]["queueName"] = "results.store"
    name = scaler["metadata"]["name"]
    assert differences(COMPOSE, manifests, TASKS) == [
        f"deploy: `{name}` scales `{target}` on `results.store`, which it does not read"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_offers_its_declared_metrics_port(overlay):
    assert metrics_port_differences(COMPOSE, rendered(overlay)) == []


def test_a_missing_metrics_port_is_named():
    compose = copy.deepcopy(COMPOSE)
    del compose["services"]["store"]["expose"]
    manifests = copy.deepcopy(list(rendered("production")))
    dispatcher = next(d for d in manifests if d["metadata"]["name"] == "wcml-dispatcher")
    dispatcher["spec"]["template"]["spec"]["containers"][0]["ports"] = []
    store = topology.service("store")
    assert metrics_port_differences(compose, manifests) == [
        f"compose.yaml: `store` runs store, whose /metrics is on {store.metrics}: expose it",
        f"compose.yaml: `store` runs latest, whose /metrics is on {topology.service('latest').metrics}: "
        "expose it",
        f"deploy: `wcml-dispatcher` runs dispatcher: declare its port "
        f"{topology.service('dispatcher').metrics} named `metrics`",
    ]
