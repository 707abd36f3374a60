"""One sub-model per repository, with a pooled fallback for repositories the model has not seen.

Label conventions differ per project (NLBSE'24 trains one classifier per repository), yet a bundle must
be one versioned file that scores any issue: ``RepoRouter`` is that file. Its inputs are (repo, text)
pairs; ``model_inputs`` builds them (or plain texts for a model that does not route).

A repository's classifier is its own, but what a bug report or a question looks like carries over
between projects: with ``others_weight`` > 0 it also learns from the other repositories' issues, each
counting that fraction of one of its own (what that gains on NLBSE'24: docs/predictor.md).

A repository it has not seen (the usual case for a team that installs a bundle trained elsewhere) is
answered by ``fallback``, fitted on all repositories' issues: a model chosen for that case
(``kinds.make_fallback``), measured by leave-one-repository-out (``training.loro``).

With ``shared``, a transformer fitted once on all repositories' issues (the tuned model's encoder,
``tuned.WithEmbeddings``) turns the texts into what every sub-model reads: tuning an encoder once per
repository would cost five times as much, and would see a fifth of the pairs.

Every saved bundle names ``services.predictor.routing.RepoRouter`` by its path (skops records it): moving
or renaming this module would make installed bundles, the packaged starter among them, unloadable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline

from services.predictor.tasks import Task
from shared.messages import IssueSnapshot


class RepoRouter(ClassifierMixin, BaseEstimator):
    """Fits ``estimator`` once per repository with at least ``min_examples`` issues of two or more
    labels (on that repository's issues, plus the others' at ``others_weight`` each), and ``fallback``
    (default: ``estimator``) once on everything for the repositories it has not seen; all of them on
    ``shared``'s output when it is set."""

    def __init__(self, estimator: Any = None, min_examples: int = 30, others_weight: float = 0.0,
                 shared: Any = None, fallback: Any = None):
        self.estimator = estimator
        self.min_examples = min_examples
        self.others_weight = others_weight
        self.shared = shared
        self.fallback = fallback

    def fit(self, X: Sequence[tuple[str, str]], y: Sequence[str]) -> RepoRouter:
        repos, texts = _split(X)
        y = np.asarray(y, dtype=object)
        self.classes_ = np.array(sorted(set(y)), dtype=object)
        self.shared_ = None if self.shared is None else clone(self.shared).fit(list(texts), y)
        texts = self._shared_transform(texts)
        fallback = getattr(self, "fallback", None)  # bundles from before ``fallback`` have none
        fallback = self.estimator if fallback is None else fallback
        self.fallback_ = clone(fallback).fit(list(texts), y)
        self.repos_: list[str] = []
        self.models_: list[Any] = []
        for repo in sorted(set(repos)):
            mask = repos == repo
            if mask.sum() >= self.min_examples and len(set(y[mask])) >= 2:
                self.repos_.append(str(repo))
                self.models_.append(self._fit_repo(texts, y, mask))
        return self

    def _fit_repo(self, texts: np.ndarray, y: np.ndarray, own: np.ndarray) -> Any:
        """The repository's sub-model: its own issues, plus the others' at ``others_weight`` each."""
        model = clone(self.estimator)
        if not self.others_weight or own.all():
            return model.fit(list(texts[own]), y[own])
        order = np.concatenate([np.flatnonzero(own), np.flatnonzero(~own)])
        weights = np.where(own[order], 1.0, float(self.others_weight))
        return model.fit(list(texts[order]), y[order], **_sample_weight(model, weights))

    def _shared_transform(self, texts: np.ndarray) -> np.ndarray:
        shared = getattr(self, "shared_", None)  # bundles from before ``shared`` have none
        if shared is None or not len(texts):
            return texts
        return np.asarray(shared.transform(list(texts)), dtype=object)

    def predict_proba(self, X: Sequence[tuple[str, str]]) -> np.ndarray:
        repos, texts = _split(X)
        texts = self._shared_transform(texts)
        out = np.zeros((len(texts), len(self.classes_)))
        routes = dict(zip(self.repos_, self.models_, strict=True))
        for repo in set(repos):
            mask = repos == repo
            model = routes.get(repo, self.fallback_)
            columns = np.searchsorted(self.classes_, np.asarray(model.classes_, dtype=object))
            out[np.ix_(mask, columns)] = model.predict_proba(list(texts[mask]))
        return out

    def routed(self, repos: Sequence[str]) -> np.ndarray:
        """For each repository, whether a sub-model of its own answers it (else the fallback does)."""
        own = set(self.repos_)
        return np.array([str(repo) in own for repo in repos], dtype=bool)

    def predict(self, X: Sequence[tuple[str, str]]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _sample_weight(model: Any, weights: np.ndarray) -> dict[str, np.ndarray]:
    """``fit`` keyword arguments that weight samples at the classifier (a pipeline's last step)."""
    if isinstance(model, Pipeline):
        return {f"{model.steps[-1][0]}__sample_weight": weights}
    return {"sample_weight": weights}


def _split(X: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    repos = np.array([str(x[0]) for x in X], dtype=object)
    texts = np.array([x[1] for x in X], dtype=object)
    return repos, texts


def model_inputs(task: Task, pipeline: Any, issues: Sequence[IssueSnapshot]) -> list:
    """What ``pipeline`` takes: (repo, text) pairs for a router, the task's texts otherwise."""
    texts = [task.text(issue) for issue in issues]
    if isinstance(pipeline, RepoRouter):
        return [(issue.repo, text) for issue, text in zip(issues, texts, strict=True)]
    return texts
