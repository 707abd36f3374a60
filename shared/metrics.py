"""Prometheus metrics: one registry per process, served as text on /metrics.

Under gunicorn several worker processes share one directory (PROMETHEUS_MULTIPROC_DIR, set by
`wcml ingest`/`wcml api` before anything imports prometheus_client), and /metrics sums them. Every
other process of the distributed mode serves its own registry on a port of its own
(``shared.metrics_server``), with the process's own CPU, memory and start time (``process_*``).

Names follow Prometheus' conventions: ``wcml_<service>_<what>_<unit>``, a counter ending ``_total``, a
duration in ``_seconds``; labels take values from a closed set (a task, a queue, an outcome), never
from a request. deploy/observability's dashboard and alerts use only names registered here; a test
holds them to it.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
REGISTRY = CollectorRegistry(auto_describe=True)

if not MULTIPROCESS:  # summed over gunicorn's workers, a process's CPU and memory would mean nothing
    ProcessCollector(registry=REGISTRY)

# Seconds, from a millisecond to a minute: a batch, a predict call, a request.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

_cache: dict[str, object] = {}


def _get(kind, name: str, doc: str, labels=(), **kwargs):
    if name not in _cache:
        _cache[name] = kind(name, doc, labelnames=labels, registry=REGISTRY, **kwargs)
    return _cache[name]


def counter(name: str, doc: str, labels=()) -> Counter:
    return _get(Counter, name, doc, labels)


def gauge(name: str, doc: str, labels=()) -> Gauge:
    """In multi-process mode the freshest value wins: our gauges have one writer each."""
    extra = {"multiprocess_mode": "mostrecent"} if MULTIPROCESS else {}
    return _get(Gauge, name, doc, labels, **extra)


def histogram(name: str, doc: str, labels=(), buckets=Histogram.DEFAULT_BUCKETS) -> Histogram:
    return _get(Histogram, name, doc, labels, buckets=buckets)


def render() -> tuple[bytes, str]:
    """Body and content type for a /metrics response."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """gunicorn child_exit hook (runs in a signal handler: nothing may be imported here)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)
