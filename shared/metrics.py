"""Prometheus metrics: one registry per process, served as text on /metrics."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

_cache: dict[str, object] = {}


def _get(kind, name: str, doc: str, labels=(), **kwargs):
    if name not in _cache:
        _cache[name] = kind(name, doc, labelnames=labels, registry=REGISTRY, **kwargs)
    return _cache[name]


def counter(name: str, doc: str, labels=()) -> Counter:
    return _get(Counter, name, doc, labels)


def gauge(name: str, doc: str, labels=()) -> Gauge:
    return _get(Gauge, name, doc, labels)


def histogram(name: str, doc: str, labels=(), buckets=Histogram.DEFAULT_BUCKETS) -> Histogram:
    return _get(Histogram, name, doc, labels, buckets=buckets)


def render() -> tuple[bytes, str]:
    """Body and content type for a /metrics response."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
