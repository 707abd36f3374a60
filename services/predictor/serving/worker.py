"""Predictor consumer: task messages in micro-batches, a predict call and a result message per 256
issues, ack after confirm."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from services.predictor.serving.bundle import Bundle, BundleError, load_bundle
from shared import metrics
from shared.broker import Broker, Delivery, Outgoing, Rejection
from shared.database import utcnow
from shared.messages import (
    RESULTS_EXCHANGE,
    MessageError,
    Prediction,
    TaskMessage,
    batch_message_id,
    decode_each,
    encode_batch,
)

log = logging.getLogger(__name__)
predicted_total = metrics.counter("wcml_predictor_predictions_total", "Predictions published",
                                  ("task", "model_version"))
batch_size = metrics.histogram("wcml_predictor_batch_issues", "Issues per predict call", ("task",),
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
predict_seconds = metrics.histogram("wcml_predictor_predict_duration_seconds",
                                    "Seconds one predict call takes (its issues scored), by task", ("task",),
                                    buckets=metrics.DURATION_BUCKETS)
# Issues per predict call and per result message: a bound on a message's size (about 0.5 KB a
# prediction) however many tasks the consumed task messages hold (a replay's are batches).
RESULTS_PER_MESSAGE = 256


class Predictor:
    """Scores one task; the default bundle is loaded once, pinned versions on first use."""

    def __init__(self, task: str, models_dir: Path, broker: Broker, bundle: Bundle | None = None):
        self.task = task
        self.models_dir = models_dir
        self.broker = broker
        self.default = bundle or load_bundle(models_dir, task)
        self._pinned: dict[str, Bundle] = {self.default.version: self.default}

    def bundle_for(self, version: str | None) -> Bundle:
        if version is None:
            return self.default
        if version not in self._pinned:
            self._pinned[version] = load_bundle(self.models_dir, self.task, version)
        return self._pinned[version]

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        rejections: list[Rejection] = []
        groups: dict[str, list[TaskMessage]] = {}
        bundles: dict[str, Bundle] = {}
        for d in deliveries:
            for item in decode_each(d.body, TaskMessage):  # one task, or a replay's batch of them
                try:
                    if item.error is not None:
                        raise MessageError(item.error)
                    message = item.message
                    if message.task != self.task:
                        raise MessageError(f"task {message.task!r} sent to the {self.task} predictor")
                    bundle = self.bundle_for(message.model_version)
                except (MessageError, BundleError) as exc:
                    rejections.append(Rejection(d.carrying(item.alone), str(exc)))
                    continue
                bundles[bundle.version] = bundle
                groups.setdefault(bundle.version, []).append(message)
        outgoing = []
        for version, messages in groups.items():
            for start in range(0, len(messages), RESULTS_PER_MESSAGE):
                outgoing.append(self._results(bundles[version], messages[start:start + RESULTS_PER_MESSAGE]))
            predicted_total.labels(self.task, version).inc(len(messages))
        if outgoing:
            self.broker.publish(outgoing)
        return rejections

    def _results(self, bundle: Bundle, messages: list[TaskMessage]) -> Outgoing:
        """One predict call; its predictions as one result message (a batch where there are several)."""
        started = time.perf_counter()
        scored = bundle.predict([m.issue for m in messages])
        predict_seconds.labels(self.task).observe(time.perf_counter() - started)
        batch_size.labels(self.task).observe(len(messages))
        now = utcnow().isoformat()
        predictions = [
            Prediction(task=self.task, model_version=bundle.version, delivery_id=m.delivery_id,
                       position=m.position, repo=m.issue.repo, number=m.issue.number, label=s.label,
                       confidence=s.confidence, probabilities=s.probabilities, predicted_at=now,
                       event=m.event, action=m.action, replay_id=m.replay_id,
                       fills_live=m.replay_id is not None and m.model_version is None, source=m.source,
                       probability=s.probability, precision=s.precision)
            for m, s in zip(messages, scored, strict=True)]
        first = f"{messages[0].delivery_id}:{self.task}:{bundle.version}"
        return Outgoing(RESULTS_EXCHANGE, self.task, encode_batch(predictions),
                        message_id=batch_message_id(first, len(messages)))
