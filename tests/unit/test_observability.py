"""deploy/observability held to what the services export, offline.

- The metric names the code registers follow Prometheus' conventions (``wcml_`` prefix, ``_total``
  counters, a unit at the end of a histogram's name).
- The Grafana dashboard is what scripts/build_dashboard.py writes, validates against the JSON Schema
  beside it (the part of Grafana's dashboard model it uses, written for this test), lays its panels on
  Grafana's 24-column grid without overlap, and covers each part of the pipeline.
- Every PromQL expression of the dashboard and of alerts.yaml names only series that exist: those the
  code registers (read from the source: every ``metrics.counter|gauge|histogram("name"``), the process
  collector's, RabbitMQ's per-object queue series and Prometheus' ``up``.
- promtool (Debian's prometheus package, installed by scripts/deploy-tools) checks the rules and both
  scrape configurations (the Kubernetes one with its discovery swapped for a static list: Debian builds
  promtool without it), and runs alerts.test.yaml, in which every alert both fires and holds back.
- The compose scrape configuration scrapes every process compose.yaml runs, on its declared port.
"""

from __future__ import annotations

import importlib.util
import json
import re

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry, ProcessCollector

from shared import topology
from tests.deploy_tools import ROOT, promtool
from tests.deployment_topology import compose_units, metrics_ports

OBSERVABILITY = ROOT / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
SCHEMA = OBSERVABILITY / "grafana-dashboard.schema.json"
ALERTS = OBSERVABILITY / "alerts.yaml"
ALERT_TESTS = OBSERVABILITY / "alerts.test.yaml"
SCRAPE_CONFIGS = ("prometheus-compose.yaml", "prometheus-kubernetes.yaml")
# RabbitMQ's rabbitmq_prometheus plugin, per-object endpoint (/metrics/per-object): the queue depths.
RABBITMQ = {"rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked", "rabbitmq_queue_consumers"}
REGISTRATION = re.compile(r"metrics\.(counter|gauge|histogram)\(\s*\"([^\"]+)\"", re.S)
UNITS = ("_seconds", "_bytes", "_issues", "_events")
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                "group_right", "inf", "nan"}


def registered() -> dict[str, str]:
    """Every metric the services register, by name: its kind (read from the source, so a series
    registered only once an object is made counts too)."""
    found: dict[str, str] = {}
    for path in [*(ROOT / "services").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]:
        for kind, name in REGISTRATION.findall(path.read_text()):
            assert found.setdefault(name, kind) == kind, f"{name} registered as two kinds"
    return found


def exported() -> set[str]:
    """The sample names a scrape may hold: each registered metric's (a histogram's _bucket, _sum and
    _count), the process collector's, RabbitMQ's queue series and ``up``."""
    names = set()
    for name, kind in registered().items():
        names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    names |= {sample.name for family in registry.collect() for sample in family.samples}
    return names | RABBITMQ | {"up"}


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects: its identifiers, less strings, label matchers, ranges,
    grouping clauses, functions (a name before a parenthesis) and keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        if not match.group(2) and match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def service_labels(expr: str) -> set[str]:
    """The values an expression's ``service="…"`` matchers ask for."""
    return set(re.findall(r'\bservice\s*=\s*"([^"]*)"', expr)) - {""}


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def build_dashboard_module():
    spec = importlib.util.spec_from_file_location("build_dashboard", ROOT / "scripts" / "build_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the names -----------------------------------------------------------------------------

def test_registered_names_follow_prometheus_conventions():
    names = registered()
    assert len(names) >= 15, names
    for name, kind in names.items():
        assert re.fullmatch(r"wcml_[a-z][a-z0-9_]*", name), name
        if kind == "counter":
            assert name.endswith("_total"), f"a counter's name ends _total: {name}"
        else:
            assert not name.endswith("_total"), f"only a counter's name ends _total: {name}"
        if kind == "histogram":
            assert name.endswith(UNITS), f"a histogram's name ends with its unit: {name}"


def test_the_promql_reader_finds_series_and_nothing_else():
    expr = ('histogram_quantile(0.95, sum by (le, task) (rate(wcml_a_seconds_bucket{task=~"x|y"}[5m])))'
            ' / on (task) group_left sum without (instance) (wcml_b_total offset 1h) > bool 2'
            ' and absent(up{service="predictor"}) or delta(wcml_c[15m:1m]) unless vector(1)')
    assert metric_names(expr) == {"wcml_a_seconds_bucket", "wcml_b_total", "up", "wcml_c"}
    assert service_labels(expr) == {"predictor"}


# -- the dashboard ------------------------------------------------------------------------------

def test_the_dashboard_is_what_its_script_writes():
    assert DASHBOARD.read_text() == build_dashboard_module().text(), \
        "edit scripts/build_dashboard.py and run it: the JSON is its output"


def test_the_dashboard_validates_against_the_schema_and_the_schema_rejects_mistakes():
    schema, dashboard = json.loads(SCHEMA.read_text()), json.loads(DASHBOARD.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(dashboard, schema, cls=jsonschema.Draft202012Validator)
    panel = next(p for p in dashboard["panels"] if p["type"] == "timeseries")
    broken = [
        {**dashboard, "panel": dashboard["panels"]},  # a misspelt top-level key
        {**dashboard, "panels": [{**panel, "gridPos": {**panel["gridPos"], "w": 30}}]},  # wider than the grid
        {**dashboard, "panels": [{**panel, "targets": [{"refId": "A", "query": "up"}]}]},  # no expr
        {**dashboard, "panels": [{k: v for k, v in panel.items() if k != "datasource"}]},
    ]
    for document in broken:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def test_the_dashboard_panels_fit_the_grid_without_overlap_and_have_unique_ids():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        taken = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not taken & cells, f"{p['title']} overlaps another panel"
        cells |= taken


def test_the_dashboard_covers_every_part_of_the_pipeline():
    used = set().union(*map(metric_names, dashboard_exprs(json.loads(DASHBOARD.read_text()))))
    wanted = {
        "webhook rate": "wcml_ingest_deliveries_total", "5xx rate": "wcml_http_requests_total",
        "relay lag": "wcml_relay_lag_seconds", "queue depths": "rabbitmq_queue_messages_ready",
        "dead letters": "wcml_consumer_dead_letters_total",
        "predictor throughput": "wcml_predictor_predictions_total",
        "predictor latency": "wcml_predictor_predict_duration_seconds_bucket",
        "store lag": "wcml_store_lag_seconds_bucket", "actions": "wcml_actions_settled_total",
    }
    missing = {what: name for what, name in wanted.items() if name not in used}
    assert not missing, missing


def test_every_dashboard_and_alert_expression_names_exported_series_and_declared_services():
    known, services = exported(), {spec.name for spec in topology.SERVICES}
    expressions = [*dashboard_exprs(json.loads(DASHBOARD.read_text())), *(r["expr"] for r in alert_rules())]
    assert len(expressions) > 30
    for expr in expressions:
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{sorted(names - known)} in {expr!r}: no service exports it"
        assert service_labels(expr) <= services, expr


# -- the alerts ------------------------------------------------------------------------------------

def test_the_alerts_cover_what_an_operator_must_hear_of():
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {"WcmlQueueDepthGrowing", "WcmlDeadLetters", "WcmlRelayLag", "WcmlStoreLag", "WcmlHttp5xxRate",
            "WcmlPredictorDown", "WcmlPredictorAbsent", "WcmlServiceDown"} <= alerts
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_every_alert_is_tested_firing_and_holding_back():
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for rule in alert_rules():
        assert cases.get(rule["alert"]) == {True, False}, rule["alert"]


def test_promtool_checks_the_rules():
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_runs_the_alert_tests():
    done = promtool("test", "rules", ALERT_TESTS.name, cwd=OBSERVABILITY)
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)


@pytest.mark.parametrize("config", SCRAPE_CONFIGS)
def test_promtool_checks_the_scrape_configurations(config, tmp_path):
    """Debian builds promtool without Kubernetes' service discovery, so the Kubernetes configuration is
    checked with each ``kubernetes_sd_configs`` swapped for an empty static list: everything else (its
    relabelling rules, their regular expressions, the rule file it loads) is checked as it is."""
    text = yaml.safe_load((OBSERVABILITY / config).read_text())
    for job in text["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": []}]
    checked = tmp_path / config
    checked.write_text(yaml.safe_dump(text))
    (tmp_path / ALERTS.name).write_text(ALERTS.read_text())
    done = promtool("check", "config", str(checked))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout, done.stdout


def test_the_compose_scrape_configuration_reaches_every_process_on_its_declared_port():
    config = yaml.safe_load((OBSERVABILITY / "prometheus-compose.yaml").read_text())
    jobs = set()
    for job in config["scrape_configs"]:
        labels = {r["target_label"]: r["replacement"] for r in job.get("relabel_configs", [])}
        for sd in job.get("dns_sd_configs", []):
            jobs |= {(name, sd["port"], labels.get("service"), labels.get("task")) for name in sd["names"]}
    expected = set()
    for unit in compose_units(yaml.safe_load((ROOT / "compose.yaml").read_text())):
        spec = next((s for s in topology.SERVICES if unit.command[:1] == (s.name,)), None)
        if spec is None:
            continue  # a job (migrate, models)
        task = unit.command[unit.command.index("--task") + 1] if spec.per_task else None
        [(_, port, _)] = [p for p in metrics_ports(unit.command) if p[0] == spec.name]
        expected.add((unit.name, port, spec.name, task))
        if spec.beside and f"--no-{spec.beside}" not in unit.command:
            expected.add((unit.name, topology.service(spec.beside).metrics, spec.beside, None))
    assert expected and expected <= jobs, sorted(expected - jobs)
