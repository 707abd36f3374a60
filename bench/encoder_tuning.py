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


def load_encoder():
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModel, AutoTokenizer

    path = str(_model_dir())
    encoder = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return AutoTokenizer.from_pretrained(path), encoder


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


def padded(states):
    hidden = torch.zeros(len(states), max(s.shape[0] for s in states), states[0].shape[1])
    mask = torch.zeros(hidden.shape[:2])
    for row, s in enumerate(states):
        hidden[row, :s.shape[0]] = s.float()
        mask[row, :s.shape[0]] = 1
    return hidden, mask


def top_forward(layers, hidden, mask):
    additive = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
    for layer in layers:
        hidden = layer(hidden, additive)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def embed_top(layers, states, batch=64):
    with torch.inference_mode():
        return torch.cat([top_forward(layers, *padded(states[s:s + batch]))
                          for s in range(0, len(states), batch)]).numpy()


def tune(encoder, k, states, labels, epochs, lr, batch, seed=0):
    torch.manual_seed(seed)
    layers = torch.nn.ModuleList(copy.deepcopy(encoder.encoder.layer[i]) for i in range(k, 6)).train()
    optimiser = torch.optim.AdamW(layers.parameters(), lr=lr, weight_decay=0.01)
    codes = torch.as_tensor(np.unique(labels, return_inverse=True)[1])
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(states))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            if len(idx) < 2:
                continue
            e = top_forward(layers, *padded([states[i] for i in idx]))
            same = (codes[idx][:, None] == codes[idx][None, :]).float()
            pairs = ~torch.eye(len(idx), dtype=torch.bool)
            loss = ((e @ e.T - same) ** 2)[pairs].mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return layers.eval()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=4, help="frozen lower layers (of 6)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--weight", type=float, default=0.7, help="embedding weight beside TF-IDF")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    task = get_task("issuetype")
    issues, labels = read_labelled(TRAIN)
    texts = [task.text(i) for i in issues]
    repos = np.array([i.repo for i in issues], dtype=object)
    y = np.array(labels, dtype=object)
    tokenizer, encoder = load_encoder()
    states = lower_states(tokenizer, encoder, texts, args.k)
    frozen = embed_top(encoder.encoder.layer[args.k:], states)
    strata = [f"{r}\n{label}" for r, label in zip(repos, y, strict=True)]
    preds = {kind: np.empty(len(y), dtype=object) for kind in ("frozen", "tuned", "both")}
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(texts, strata)
    for fold, (fit, test) in enumerate(folds):
        start = time.perf_counter()
        tuned = embed_top(tune(encoder, args.k, [states[i] for i in fit], y[fit], args.epochs, args.lr,
                               args.batch), states)
        for repo in sorted(set(repos)):
            own, others = fit[repos[fit] == repo], fit[repos[fit] != repo]
            rows = np.concatenate([own, others])
            weights = np.concatenate([np.ones(len(own)), np.full(len(others), OTHERS_WEIGHT)])
            held_out = test[repos[test] == repo]
            tfidf = clone(text_pipeline().named_steps["features"]).fit([texts[i] for i in rows])
            for kind, embeddings in (("frozen", [frozen]), ("tuned", [tuned]), ("both", [frozen, tuned])):
                def features(idx, embeddings=embeddings, tfidf=tfidf):
                    return hstack([tfidf.transform([texts[i] for i in idx])]
                                  + [csr_matrix(e[idx] * args.weight) for e in embeddings]).tocsr()
                classifier = LogisticRegression(C=4, class_weight="balanced", solver="newton-cg",
                                                max_iter=1000)
                classifier.fit(features(rows), y[rows], sample_weight=weights)
                preds[kind][held_out] = classifier.predict(features(held_out))
        print(json.dumps({"fold": fold, "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    result = {}
    for kind, pred in preds.items():
        per_repo = {r: round(float(f1_score(y[repos == r], pred[repos == r], average="macro")), 4)
                    for r in sorted(set(repos))}
        result[kind] = {"mean": round(float(np.mean(list(per_repo.values()))), 4), "per_repo": per_repo}
    print(json.dumps({"args": vars(args), **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
