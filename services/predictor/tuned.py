"""The tuned model's features: a sentence encoder whose top layers are tuned on the task's labels.

SetFit's recipe (a pairwise cosine loss: two issues of one label should embed alike, of two labels
apart), on a CPU budget: the lower layers stay frozen, their output is computed once per text and
cached, and only the top ``tuned_layers`` are trained, on every pair within each batch (how it scores
against the heavy model: docs/predictor.md). Full fine-tuning, as SetFit does, would go here too, but
needs a GPU.

``TunedEncoder`` is fitted once per training run, on all repositories' issues; a ``RepoRouter`` with
``shared=WithEmbeddings(TunedEncoder())`` then gives every repository's classifier (text, vector) pairs,
which ``tuned_pipeline`` reads. The bundle stores the tuned layers' weights (float16) and the sha256 of
the base encoder's weights; a different base encoder is refused.

torch and transformers (the ``ml`` extra) are imported inside the functions that run the encoder:
optional, and slow to import, so a light model never pays for them.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from services.predictor.array_cache import ArrayCache
from services.predictor.encoders import MPNET, WEIGHTS_FILE, EncoderError, encoder_dir, sha256_of
from services.predictor.tasks.base import text_pipeline

_lock = threading.Lock()
_bases: dict[tuple[str, int], Any] = {}
_lower = ArrayCache("lower", keep=4096)  # lower-layer outputs, float16 (tokens x hidden size each)


class _Base:
    """A loaded encoder cut after its k lower layers, with a copy of the layers above."""

    def __init__(self, name: str, k: int):
        import torch
        from transformers import AutoModel, AutoTokenizer

        os.environ["HF_HUB_OFFLINE"] = "1"  # files come from installed packages, never a download
        path = str(encoder_dir(name))
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
        layers = model.encoder.layer
        if not 0 < k < len(layers):
            raise EncoderError(f"{name} has {len(layers)} layers: cannot freeze {k}")
        self.top = layers[k:]
        model.encoder.layer = layers[:k]
        self.lower = model
        self.sha256 = sha256_of(Path(path) / WEIGHTS_FILE)
        compute = getattr(model.encoder, "compute_position_bias", None)  # MPNet's relative positions
        self.position_bias = None if compute is None else compute

    def lower_states(self, texts: list[str], max_tokens: int, batch: int = 16) -> list[np.ndarray]:
        """Per text, the k-th layer's output over its tokens (no padding), float16."""
        out: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
        order = np.argsort([len(t) for t in texts])
        with self.torch.inference_mode():
            for start in range(0, len(texts), batch):
                idx = order[start:start + batch]
                encoded = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=max_tokens,
                                         padding=True, return_tensors="pt")
                hidden = self.lower(**encoded).last_hidden_state
                lengths = encoded["attention_mask"].sum(1).tolist()
                for row, i in enumerate(idx):
                    out[i] = hidden[row, :int(lengths[row])].to(self.torch.float16).numpy().copy()
        return out

    def top_forward(self, layers, states: list[np.ndarray]):
        """Mean-pooled, unit-length embeddings from ``layers`` over cached lower states."""
        torch = self.torch
        longest = max(s.shape[0] for s in states)
        hidden = torch.zeros(len(states), longest, states[0].shape[1])
        mask = torch.zeros(len(states), longest)
        for row, s in enumerate(states):
            hidden[row, :s.shape[0]] = torch.from_numpy(s.astype(np.float32))
            mask[row, :s.shape[0]] = 1
        additive = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        extra = ()
        if self.position_bias is not None:
            with torch.no_grad():
                extra = (self.position_bias(hidden),)
        for layer in layers:
            hidden = layer(hidden, additive, *extra)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1)


def _base(name: str, k: int) -> _Base:
    with _lock:
        if (name, k) not in _bases:
            _bases[(name, k)] = _Base(name, k)
        return _bases[(name, k)]


def lower_states(base: _Base, name: str, k: int, texts: list[str], max_tokens: int) -> list[np.ndarray]:
    """``base.lower_states``, cached by content hash: cross-validation and the final fit read the
    same texts."""
    keys = [hashlib.sha256(f"{name}\n{k}\n{max_tokens}\n{t}".encode()).hexdigest() for t in texts]
    return _lower.get(keys, texts, lambda missing: base.lower_states(missing, max_tokens))


def _batches(lengths: np.ndarray, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar lengths (less padding): a random order, sorted by length within
    windows of 8 batches, the batches themselves shuffled."""
    order = rng.permutation(len(lengths))
    out = []
    window = batch * 8
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out.extend(chunk[i:i + batch] for i in range(0, len(chunk), batch))
    return [out[i] for i in rng.permutation(len(out))]


class TunedEncoder(TransformerMixin, BaseEstimator):
    """Texts -> embeddings from ``encoder`` with its top ``tuned_layers`` tuned on the labels given to
    ``fit`` (pairwise cosine loss, AdamW, ``epochs`` over the data in batches of ``batch``)."""

    def __init__(self, encoder: str = MPNET, tuned_layers: int = 2, epochs: int = 3, lr: float = 5e-5,
                 batch: int = 32, max_tokens: int = 256, seed: int = 0):
        self.encoder = encoder
        self.tuned_layers = tuned_layers
        self.epochs = epochs
        self.lr = lr
        self.batch = batch
        self.max_tokens = max_tokens
        self.seed = seed

    def _frozen(self) -> int:
        from transformers import AutoConfig

        layers = AutoConfig.from_pretrained(str(encoder_dir(self.encoder))).num_hidden_layers
        return layers - self.tuned_layers

    def fit(self, X, y) -> TunedEncoder:
        import torch

        self.frozen_layers_ = self._frozen()
        base = _base(self.encoder, self.frozen_layers_)
        states = lower_states(base, self.encoder, self.frozen_layers_, [str(t) for t in X], self.max_tokens)
        torch.manual_seed(self.seed)
        layers = torch.nn.ModuleList(copy.deepcopy(list(base.top))).train()
        optimiser = torch.optim.AdamW(layers.parameters(), lr=self.lr, weight_decay=0.01)
        codes = torch.as_tensor(np.unique(np.asarray(y, dtype=object), return_inverse=True)[1])
        rng = np.random.default_rng(self.seed)
        lengths = np.array([s.shape[0] for s in states])
        for _ in range(self.epochs):
            for idx in _batches(lengths, self.batch, rng):
                if len(idx) < 2:
                    continue
                e = base.top_forward(layers, [states[i] for i in idx])
                same = (codes[idx][:, None] == codes[idx][None, :]).float()
                pairs = ~torch.eye(len(idx), dtype=torch.bool)
                loss = ((e @ e.T - same) ** 2)[pairs].mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        # Stored as float16; fitted features are computed from the stored weights, as predictions will be.
        self.weights_ = {name: t.detach().to(torch.float16).numpy().copy()
                         for name, t in layers.state_dict().items()}
        self.encoder_sha256_ = base.sha256
        return self

    def _layers(self, base: _Base):
        layers = getattr(self, "_loaded", None)
        if layers is None:
            if base.sha256 != self.encoder_sha256_:
                raise EncoderError(f"the installed {self.encoder} differs from the one this model was tuned "
                                   "from: reinstall it or retrain")
            torch = base.torch
            layers = torch.nn.ModuleList(copy.deepcopy(list(base.top))).eval()
            layers.load_state_dict({name: torch.from_numpy(w.astype(np.float32))
                                    for name, w in self.weights_.items()})
            self._loaded = layers
        return layers

    def transform(self, X) -> np.ndarray:
        base = _base(self.encoder, self.frozen_layers_)
        layers = self._layers(base)
        texts = [str(t) for t in X]
        if not texts:
            return np.zeros((0, base.lower.config.hidden_size), np.float32)
        states = lower_states(base, self.encoder, self.frozen_layers_, texts, self.max_tokens)
        out = []
        with base.torch.inference_mode():
            for start in range(0, len(states), 64):
                out.append(base.top_forward(layers, states[start:start + 64]).numpy())
        return np.concatenate(out).astype(np.float32)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_loaded", None)
        return state


class WithEmbeddings(TransformerMixin, BaseEstimator):
    """Texts -> (text, embedding) pairs, the embeddings from ``encoder`` fitted on these texts."""

    def __init__(self, encoder: Any = None):
        self.encoder = encoder

    def fit(self, X, y=None) -> WithEmbeddings:
        self.encoder_ = clone(self.encoder).fit(X, y)
        return self

    def transform(self, X) -> np.ndarray:
        texts = [str(t) for t in X]
        vectors = self.encoder_.transform(texts)
        out = np.empty(len(texts), dtype=object)
        out[:] = list(zip(texts, vectors, strict=True))
        return out


class PairText(TransformerMixin, BaseEstimator):
    """(text, vector) pairs -> the texts."""

    def fit(self, X, y=None) -> PairText:
        return self

    def transform(self, X) -> list[str]:
        return [str(x[0]) for x in X]


class PairVector(TransformerMixin, BaseEstimator):
    """(text, vector) pairs -> the vectors, scaled by ``weight`` (their share against TF-IDF)."""

    def __init__(self, weight: float = 0.7):
        self.weight = weight

    def fit(self, X, y=None) -> PairVector:
        return self

    def transform(self, X) -> np.ndarray:
        return np.stack([np.asarray(x[1], dtype=np.float32) for x in X]) * np.float32(self.weight)


def tuned_pipeline(c: float = 4.0, weight: float = 0.7) -> Pipeline:
    """A repository's classifier over (text, tuned embedding) pairs: the light model's TF-IDF features
    beside the embedding at ``weight``, one balanced logistic regression."""
    return Pipeline([
        ("features", FeatureUnion([
            ("tfidf", Pipeline([("text", PairText()),
                                ("features", text_pipeline().named_steps["features"])])),
            ("embedding", PairVector(weight)),
        ])),
        ("classifier", LogisticRegression(C=c, class_weight="balanced", solver="newton-cg", max_iter=1000)),
    ])


__all__ = ["PairText", "PairVector", "TunedEncoder", "WithEmbeddings", "tuned_pipeline"]
