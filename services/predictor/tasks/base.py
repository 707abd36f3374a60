"""What a task is: its labels, its features, how its label is read from history, its model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from services.predictor.tasks import history, text
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
    """Word 1-2 grams + char 3-4 grams over the text, and word 1-2 grams over the title alone (a
    title's words say more than the same words deep in a body), hashed TF-IDF, balanced logistic
    regression.

    NLBSE'24 by CV: ~0.75 macro F1 alone, the title features add 0.1-0.8 points; ~2,000 texts/s in
    batches. Hashing, not a vocabulary: skops stores a vocabulary dict at ~800 bytes a term (80 MB, 4 s
    to load for 1,500 issues); hashed, a bundle is a few MB. Only sklearn/numpy types and ours.
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


MODEL_KINDS = ("light", "heavy", "tuned")


@dataclass(frozen=True)
class Task:
    """Base task; a concrete task overrides ``label_from_history`` and, if it must, ``text``.

    ``per_repo``: train one sub-model per repository (see ``routing.RepoRouter``)."""

    name: str
    labels: tuple[str, ...]
    per_repo: bool = False

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
        """One training example (snapshot, label) from an API issue and its events, or None."""
        label = self.label_from_history(issue, events)
        if label is None:
            return None
        snapshot = IssueSnapshot(
            repo=history.repo_of(issue), number=int(issue.get("number") or 0),
            url=str(issue.get("html_url") or issue.get("url") or ""),
            title=self.training_title(issue, events), body=str(issue.get("body") or ""),
            author=(issue.get("user") or {}).get("login") if isinstance(issue.get("user"), dict) else None,
        )
        return snapshot, label

    def others_weight(self, kind: str) -> float:
        """For a ``per_repo`` task: how much each other repository's issue counts in a repository's
        sub-model of this kind (0: its own issues only)."""
        return 0.0

    def shared_features(self, kind: str) -> Any:
        """What is fitted once on all training issues before the classifier(s) of this kind: the
        tuned encoder for ``tuned``, nothing otherwise."""
        if kind != "tuned":
            return None
        from services.predictor.tuned import TunedEncoder, WithEmbeddings

        return WithEmbeddings(TunedEncoder())

    def make_pipeline(self, kind: str = "light") -> Pipeline:
        """A fresh, unfitted model for this task: ``light`` (hashed TF-IDF, the default where speed
        matters), ``heavy`` (adds MiniLM sentence embeddings; the ``ml`` extra) or ``tuned`` (adds
        all-mpnet-base-v2 embeddings tuned on the labels; the ``tuned`` extra). A ``tuned`` pipeline
        reads (text, embedding) pairs from ``shared_features``."""
        if kind == "heavy":
            from services.predictor.embedding import heavy_pipeline

            return heavy_pipeline()
        if kind == "tuned":
            from services.predictor.tuned import tuned_pipeline

            return tuned_pipeline()
        if kind != "light":
            raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})")
        return text_pipeline()
