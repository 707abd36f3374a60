"""Does SetFit-style tuning of the sentence encoder help the issuetype model? (It did not; see
docs/predictor.md.) CV on the NLBSE'24 *train* split only, frozen and tuned side by side on the same folds.

Per fold (5, stratified by repository and label): the top ``6 - k`` layers of all-MiniLM-L6-v2 are tuned
on the fold's training issues of all repositories with a pairwise cosine loss (every pair in a batch:
1 for the same label, 0 otherwise); the lower layers' output is computed once and cached. Then each
repository's logistic regression (its own issues, the others' at 0.05) is fitted on TF-IDF + frozen,
tuned, or both embeddings, and scored on the fold's held-out issues of that repository.

    nice .venv/bin/python -m bench.encoder_tuning [--k 4 --epochs 2 --lr 5e-5]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.sparse import csr_matrix, hstack
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from services.predictor.datasets import read_labelled
from services.predictor.embedding import _model_dir
from services.predictor.tasks import get_task
from services.predictor.tasks.base import text_pipeline

TRAIN = Path(__file__).resolve().parents[1].parent / "shared/datasets/nlbse24/issues_train.csv"
OTHERS_WEIGHT = 0.05


def load_encoder(path: str | None = None):
    """MiniLM from its package, or any BERT/MPNet sentence encoder directory (all-mpnet-base-v2)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModel, AutoTokenizer

    path = path or str(_model_dir())
    encoder = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return AutoTokenizer.from_pretrained(path), encoder


def layer_count(encoder) -> int:
    return len(encoder.encoder.layer)


def lower_states(tokenizer, encoder, texts, k, max_tokens=256, batch=32):
    """Per text, the output of the first k layers without padding, float16."""
    states = [None] * len(texts)
    order = np.argsort([len(t) for t in texts])
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            idx = order[start:start + batch]
            encoded = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_tokens,
                                padding=True, return_tensors="pt")
            hidden = encoder(**encoded, output_hidden_states=True).hidden_states[k]
            for row, i in enumerate(idx):
                states[i] = hidden[row, :int(encoded["attention_mask"][row].sum())].to(torch.float16).clone()
    return states


def cached_lower_states(root, tokenizer, encoder, texts, k, max_tokens):
    """``lower_states``, kept on disk under ``root`` (MPNet: ~8 min for the train split on 2 cores)."""
    if root is None:
        return lower_states(tokenizer, encoder, texts, k, max_tokens)
    key = hashlib.sha256(json.dumps([encoder.config.name_or_path, k, max_tokens, texts]).encode()).hexdigest()
    path = root / f"{key[:16]}.pt"
    if path.is_file():
        return torch.load(path)
    states = lower_states(tokenizer, encoder, texts, k, max_tokens)
    root.mkdir(parents=True, exist_ok=True)
    torch.save(states, path)
    return states


def padded(states):
    hidden = torch.zeros(len(states), max(s.shape[0] for s in states), states[0].shape[1])
    mask = torch.zeros(hidden.shape[:2])
    for row, s in enumerate(states):
        hidden[row, :s.shape[0]] = s.float()
        mask[row, :s.shape[0]] = 1
    return hidden, mask


def top_forward(layers, hidden, mask, position_bias=None):
    """The top layers over cached lower states; MPNet's layers also take the relative position bias,
    which its encoder computes once from the sequence length (``position_bias``: that function)."""
    additive = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
    extra = () if position_bias is None else (position_bias(hidden),)
    for layer in layers:
        hidden = layer(hidden, additive, *extra)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def position_bias_of(encoder):
    """MPNet: its encoder's relative position bias (frozen); BERT-style encoders: None."""
    compute = getattr(encoder.encoder, "compute_position_bias", None)
    if compute is None:
        return None

    def bias(hidden):
        with torch.no_grad():
            return compute(hidden)
    return bias


def embed_top(layers, states, position_bias=None, batch=64):
    with torch.inference_mode():
        return torch.cat([top_forward(layers, *padded(states[s:s + batch]), position_bias)
                          for s in range(0, len(states), batch)]).numpy()


def tune(encoder, k, states, labels, epochs, lr, batch, seed=0):
    """A copy of the layers above k, tuned with a pairwise cosine loss over every pair in a batch."""
    torch.manual_seed(seed)
    layers = torch.nn.ModuleList(copy.deepcopy(layer) for layer in encoder.encoder.layer[k:]).train()
    optimiser = torch.optim.AdamW(layers.parameters(), lr=lr, weight_decay=0.01)
    codes = torch.as_tensor(np.unique(labels, return_inverse=True)[1])
    position_bias = position_bias_of(encoder)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(states))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            if len(idx) < 2:
                continue
            e = top_forward(layers, *padded([states[i] for i in idx]), position_bias)
            same = (codes[idx][:, None] == codes[idx][None, :]).float()
            pairs = ~torch.eye(len(idx), dtype=torch.bool)
            loss = ((e @ e.T - same) ** 2)[pairs].mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return layers.eval()


def fit_score(texts, y, repos, fit, test, embeddings, weight, tfidf_too, preds):
    """Per repository: LR on (TF-IDF +) the embeddings, own issues and the others' at OTHERS_WEIGHT."""
    for repo in sorted(set(repos)):
        own, others = fit[repos[fit] == repo], fit[repos[fit] != repo]
        rows = np.concatenate([own, others])
        weights = np.concatenate([np.ones(len(own)), np.full(len(others), OTHERS_WEIGHT)])
        held_out = test[repos[test] == repo]
        tfidf = None
        if tfidf_too:
            tfidf = clone(text_pipeline().named_steps["features"]).fit([texts[i] for i in rows])
        for kind, parts in embeddings.items():
            def features(idx, parts=parts, tfidf=tfidf):
                sparse = [tfidf.transform([texts[i] for i in idx])] if tfidf is not None else []
                return hstack(sparse + [csr_matrix(e[idx] * weight) for e in parts]).tocsr()
            classifier = LogisticRegression(C=4, class_weight="balanced", solver="newton-cg", max_iter=1000)
            classifier.fit(features(rows), y[rows], sample_weight=weights)
            preds[kind][held_out] = classifier.predict(features(held_out))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", help="a sentence encoder directory (default: the packaged MiniLM)")
    parser.add_argument("--k", type=int, help="frozen lower layers (default: all but the top 2)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--per-repo", action="store_true", help="tune one copy per repository (SetFit)")
    parser.add_argument("--folds", type=int, default=5, help="score only the first N of the 5 folds")
    parser.add_argument("--skip-folds", type=int, default=0, help="and not the first N of those")
    parser.add_argument("--weight", type=float, default=0.7, help="embedding weight beside TF-IDF")
    parser.add_argument("--states-cache", type=Path, help="keep the lower layers' output in this directory")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    task = get_task("issuetype")
    issues, labels = read_labelled(TRAIN)
    texts = [task.text(i) for i in issues]
    repos = np.array([i.repo for i in issues], dtype=object)
    y = np.array(labels, dtype=object)
    tokenizer, encoder = load_encoder(args.encoder)
    k = layer_count(encoder) - 2 if args.k is None else args.k
    position_bias = position_bias_of(encoder)
    start = time.perf_counter()
    states = cached_lower_states(args.states_cache, tokenizer, encoder, texts, k, args.max_tokens)
    frozen = embed_top(encoder.encoder.layer[k:], states, position_bias)
    print(json.dumps({"cached_layers": k, "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    strata = [f"{r}\n{label}" for r, label in zip(repos, y, strict=True)]
    kinds = ("frozen", "tuned", "both", "frozen alone", "tuned alone")
    preds = {kind: np.empty(len(y), dtype=object) for kind in kinds}
    scored = np.zeros(len(y), dtype=bool)
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(texts, strata)
    for fold, (fit, test) in enumerate(folds):
        if fold >= args.folds:
            break
        if fold < args.skip_folds:
            continue
        start = time.perf_counter()
        groups = [fit[repos[fit] == r] for r in sorted(set(repos))] if args.per_repo else [fit]
        tuned = np.zeros_like(frozen)
        for group in groups:
            layers = tune(encoder, k, [states[i] for i in group], y[group], args.epochs, args.lr, args.batch)
            rows = np.flatnonzero(np.isin(repos, repos[group])) if args.per_repo else np.arange(len(y))
            tuned[rows] = embed_top(layers, [states[i] for i in rows], position_bias)
        fit_score(texts, y, repos, fit, test, {"frozen": [frozen], "tuned": [tuned], "both": [frozen, tuned]},
                  args.weight, True, preds)
        fit_score(texts, y, repos, fit, test, {"frozen alone": [frozen], "tuned alone": [tuned]}, 1.0, False,
                  preds)
        scored[test] = True
        print(json.dumps({"fold": fold, "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    result = {}
    for kind, pred in preds.items():
        per_repo = {r: round(float(f1_score(y[(repos == r) & scored], pred[(repos == r) & scored],
                                            average="macro")), 4) for r in sorted(set(repos))}
        result[kind] = {"mean": round(float(np.mean(list(per_repo.values()))), 4), "per_repo": per_repo}
    print(json.dumps({"args": vars(args), **result}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
