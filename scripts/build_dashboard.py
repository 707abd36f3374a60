"""Write the Grafana dashboard of the pipeline, deploy/observability/grafana-dashboard.json.

    .venv/bin/python scripts/build_dashboard.py

The panels are declared below, a row of them per part of the pipeline; each PromQL expression names
only series the services register (``shared/metrics.py``'s conventions), RabbitMQ's own (its
``rabbitmq_prometheus`` plugin, per object) and Prometheus' ``up``; tests/unit/test_observability.py
holds the file to this script, to the schema beside it and to those names. Every target carries the
label ``service`` (the ``wcml`` command it runs), as deploy/observability's scrape configurations set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy/observability/grafana-dashboard.json"
RATE = "[$__rate_interval]"

# (row title, [(panel title, unit, [(PromQL, legend)], description)])
ROWS = [
    ("Webhooks (ingest) and HTTP", [
        ("Webhook deliveries by outcome", "reqps",
         [(f"sum by (outcome) (rate(wcml_ingest_deliveries_total{RATE}))", "{{outcome}}")],
         "Deliveries GitHub sent, by what ingest answered (accepted, duplicate, http_4xx, unavailable)."),
        ("5xx responses by service", "reqps",
         [(f'sum by (service) (rate(wcml_http_requests_total{{status=~"5.."}}{RATE}))', "{{service}}")],
         "Responses with a 5xx status from ingest and the api."),
        ("HTTP latency p95 by service", "s",
         [("histogram_quantile(0.95, sum by (le, service) "
           f"(rate(wcml_http_request_duration_seconds_bucket{RATE})))", "{{service}}")],
         "95th percentile of the time from a request's start to its response."),
    ]),
    ("Relay", [
        ("Relay lag (events)", "short", [("max(wcml_relay_lag_events)", "unpublished events")],
         "Events committed to the event log and not yet published on wcml.events."),
        ("Relay lag (age)", "s", [("max(wcml_relay_lag_seconds)", "oldest unpublished event")],
         "Age of the oldest event the relay has not published."),
        ("Events published", "ops", [(f"sum(rate(wcml_relay_events_published_total{RATE}))", "events/s")],
         "Events the broker confirmed."),
    ]),
    ("Queues (RabbitMQ)", [
        ("Queue depth (ready)", "short", [("sum by (queue) (rabbitmq_queue_messages_ready)", "{{queue}}")],
         "Messages waiting for a consumer, by queue (RabbitMQ's per-object metrics)."),
        ("Messages being handled (unacknowledged)", "short",
         [("sum by (queue) (rabbitmq_queue_messages_unacked)", "{{queue}}")],
         "Messages delivered to a consumer and not yet acknowledged, by queue."),
        ("Consumers by queue", "short", [("sum by (queue) (rabbitmq_queue_consumers)", "{{queue}}")],
         "Consumers attached to each queue."),
    ]),
    ("Dead letters and retries", [
        ("Dead letters waiting", "short", [('sum(rabbitmq_queue_messages_ready{queue="dead"})', "dead")],
         "Messages in the dead queue: `wcml dead list` shows them with their reasons."),
        ("Dead-lettered by queue", "ops",
         [(f"sum by (queue) (rate(wcml_consumer_dead_letters_total{RATE}))", "{{queue}}")],
         "What consumers refused for good, by the queue it came from."),
        ("Transient retries by queue", "ops",
         [(f"sum by (queue) (rate(wcml_consumer_retries_total{RATE}))", "{{queue}}")],
         "Batches retried in place after a database or S3 failure."),
    ]),
    ("Dispatcher and predictors", [
        ("Tasks routed", "ops",
         [(f"sum by (task) (rate(wcml_dispatcher_routed_tasks_total{RATE}))", "{{task}}")],
         "Task messages the dispatcher published, one per event and matching task."),
        ("Predictions by task", "ops",
         [(f"sum by (task) (rate(wcml_predictor_predictions_total{RATE}))", "{{task}}")],
         "Predictions the predictors published."),
        ("Predict call p95 by task", "s",
         [("histogram_quantile(0.95, sum by (le, task) "
           f"(rate(wcml_predictor_predict_duration_seconds_bucket{RATE})))", "{{task}}")],
         "95th percentile of one predict call (a micro-batch of issues)."),
        ("Batch handling p95 by queue", "s",
         [("histogram_quantile(0.95, sum by (le, queue) "
           f"(rate(wcml_consumer_batch_duration_seconds_bucket{RATE})))", "{{queue}}")],
         "95th percentile of the time a consumer takes to settle one batch."),
        ("Predictors up by task", "short", [('sum by (task) (up{service="predictor"})', "{{task}}")],
         "Predictor processes Prometheus reaches, by task."),
    ]),
    ("Store", [
        ("Predictions stored", "ops",
         [(f"sum by (outcome) (rate(wcml_store_predictions_total{RATE}))", "{{outcome}}")],
         "Predictions the store received: stored, or a duplicate of a stored one."),
        ("Store lag p95", "s",
         [(f"histogram_quantile(0.95, sum by (le) (rate(wcml_store_lag_seconds_bucket{RATE})))", "p95"),
          (f"histogram_quantile(0.5, sum by (le) (rate(wcml_store_lag_seconds_bucket{RATE})))", "p50")],
         "Time from a prediction's scoring to its row's commit."),
        ("Documents written", "ops",
         [(f"sum by (kind) (rate(wcml_store_documents_written_total{RATE}))", "{{kind}}")],
         "Blob documents written: history objects by the store, latest documents by its follower."),
        ("Results rejected by the store", "ops",
         [(f"sum(rate(wcml_store_rejected_results_total{RATE}))", "rejected")],
         "Result messages the store dead-lettered."),
    ]),
    ("Actions", [
        ("Results read by actions", "ops",
         [(f"sum by (source) (rate(wcml_actions_results_total{RATE}))", "{{source}}")],
         "Results the actions service read, by what they were (live, import, replay)."),
        ("Actions settled", "ops",
         [(f"sum by (action, state) (rate(wcml_actions_settled_total{RATE}))", "{{action}} {{state}}")],
         "Actions settled on GitHub, by action and state (done, skipped, failed); a dry run settles none."),
    ]),
    ("Processes", [
        ("Processes up by service", "short", [('sum by (service) (up{service!=""})', "{{service}}")],
         "Processes of each service Prometheus reaches."),
        ("Resident memory by service", "bytes",
         [('sum by (service) (process_resident_memory_bytes{service!=""})', "{{service}}")],
         "Resident memory of each service's processes (one-process services)."),
        ("CPU by service", "percentunit",
         [(f'sum by (service) (rate(process_cpu_seconds_total{{service!=""}}{RATE}))', "{{service}}")],
         "CPU seconds per second of each service's processes."),
    ]),
]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def panels() -> list[dict]:
    """A row panel per part of the pipeline, its panels three (or four) across, 8 units high."""
    out, y, next_id = [], 0, 1
    for title, row in ROWS:
        out.append({"type": "row", "id": next_id, "title": title, "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id, y = next_id + 1, y + 1
        width = 24 // len(row)
        for i, (panel_title, unit, targets, description) in enumerate(row):
            out.append({
                "type": "timeseries", "id": next_id, "title": panel_title, "description": description,
                "datasource": DATASOURCE, "gridPos": {"h": 8, "w": width, "x": i * width, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}},
                "targets": [{"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr,
                             "legendFormat": legend, "range": True}
                            for n, (expr, legend) in enumerate(targets)],
            })
            next_id += 1
        y += 8
    return out


def dashboard() -> dict:
    return {
        "uid": "wcml-pipeline",
        "title": "webcompat-ml pipeline",
        "description": "Every service of the distributed mode, scraped on its own port (docs/deploy.md).",
        "tags": ["wcml"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"type": "datasource", "name": "datasource", "label": "Prometheus",
                                 "query": "prometheus", "current": {}, "hide": 0}]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels(),
    }


def text() -> str:
    """The file's text: the dashboard as indented JSON, a newline at the end."""
    return json.dumps(dashboard(), indent=2) + "\n"


def main() -> int:
    DASHBOARD.write_text(text())
    print(f"wrote {DASHBOARD.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
