"""What a task is: its labels, its model's input text, how its label is read from history.

The models themselves are built by ``services.predictor.kinds``; this module holds the light model's
text features (``text_pipeline``, ``FirstLine``) that every kind reuses, and imports no model part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from services.predictor.tasks import history, text
from shared.issues import snapshot_of_issue
from shared.messages import IssueSnapshot


def _hashed_tfidf(bits: int = 18, **vectorizer) -> Pipeline:
    return Pipeline([
        ("hash", HashingVectorizer(n_features=2**bits, alternate_sign=False, norm=None, dtype=np.float32,
                                   **vectorizer)),
        ("tfidf", TfidfTransformer(sublinear_tf=True)),
    ])


class FirstLine(TransformerMixin, BaseEstimator):
    """Texts -> their first line: a task's text starts with the issue's title."""

    def fit(self, X, y=None) -> FirstLine:
        return self

    def transform(self, X) -> list[str]:
        return [str(t).split("\n", 1)[0] for t in X]


def text_pipeline(c: float = 4.0, title: bool = True) -> Pipeline:
    """The light model: word 1-2 grams + char 3-4 grams over the text, and word 1-2 grams over the
    title alone (a title's words say more than the same words deep in a body), hashed TF-IDF,
    balanced logistic regression. The heavy and tuned models put their embeddings beside its features.

    Hashing, not a vocabulary: skops stores a vocabulary term by term, which makes a bundle large and
    slow to load; hashed, it stays small (figures in docs/predictor.md). Only sklearn/numpy types and
    ours, so the bundle loads through the allow-list.
    """
    parts = [
        ("words", _hashed_tfidf(ngram_range=(1, 2))),
        ("chars", _hashed_tfidf(analyzer="char_wb", ngram_range=(3, 4))),
    ]
    if title:
        parts.append(("title", Pipeline([("first_line", FirstLine()),
                                         ("tfidf", _hashed_tfidf(bits=16, ngram_range=(1, 2)))])))
    return Pipeline([
        ("features", FeatureUnion(parts)),
        # newton-cg: same optimum as lbfgs, about 3x faster on these sparse features
        ("classifier", LogisticRegression(C=c, class_weight="balanced", solver="newton-cg", max_iter=1000)),
    ])


@dataclass(frozen=True)
class Task:
    """Base task; a concrete task overrides ``label_from_history`` and, if it must, ``text``.

    ``per_repo``: train one sub-model per repository (see ``routing.RepoRouter``). ``preferred_kind``:
    the model kind ``wcml train`` builds when none is named and that kind's extra is installed
    (``kinds.default_kind``; otherwise light)."""

    name: str
    labels: tuple[str, ...]
    per_repo: bool = False
    preferred_kind: str = "light"

    def text(self, issue: IssueSnapshot) -> str:
        """The model's input; the same function at training and prediction time."""
        return text.title_and_body(issue.title, issue.body)

    def label_from_history(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
        """The training label of a GitHub issue, or None to leave the issue out."""
        raise NotImplementedError

    def original_title(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str:
        return history.original_title(issue, events)

    def training_title(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str:
        """The title a training example uses; the current one unless the task needs what was reported."""
        return str(issue.get("title") or "")

    def example_from_history(self, issue: dict[str, Any], events: list[dict[str, Any]]
                             ) -> tuple[IssueSnapshot, str] | None:
        """One training example (snapshot, label) from an API issue and its events, or None; the
        snapshot is built as the dispatcher builds it from a webhook (``shared.issues``). Raises
        ``NotAnIssueError`` for a labelled issue without a number."""
        label = self.label_from_history(issue, events)
        if label is None:
            return None
        return snapshot_of_issue(issue, title=self.training_title(issue, events)), label

    def others_weight(self, kind: str) -> float:
        """For a ``per_repo`` task: how much each other repository's issue counts in a repository's
        sub-model of this kind (0: its own issues only)."""
        return 0.0
