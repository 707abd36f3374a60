"""Builders the predictor tests share: synthetic labelled issues, and the train -> install -> evaluate
round trip through the `wcml` commands."""

from __future__ import annotations

import json
import random

from services.cli import main
from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import load_bundle

WORDS = {"bug": "crash error exception broken fails traceback regression",
         "feature": "add support option would allow proposal enhancement",
         "question": "how can I is it possible anyone know help understand"}


def synthetic(repos=("acme/app", "acme/lib"), per_label=20, seed=0):
    """Issues whose wording gives their type away; in acme/lib 'feature' and 'bug' words are swapped,
    so only a per-repository model can get both repositories right."""
    rng = random.Random(seed)
    rows = []
    for repo in repos:
        for label in WORDS:
            vocab = WORDS[{"bug": "feature", "feature": "bug"}.get(label, label) if repo == "acme/lib"
                          else label].split()
            for _ in range(per_label):
                words = " ".join(rng.choice(vocab) for _word in range(8))
                rows.append({"repo": repo, "number": len(rows) + 1, "title": words[:30], "body": words,
                             "author": "someone", "label": label})
    return rows


def own_words_repos(repos, seed=0):
    """Each repository words its issues its own way, with a few words shared by all (and misleading
    ones): what a pooled model learns of the repositories' own words is no use on a new one."""
    rng = random.Random(seed)
    shared = {"bug": "crash", "feature": "add", "question": "how"}
    X, y = [], []
    for repo in repos:
        own = {label: [f"{label[:3]}{repo[-1]}{k}" for k in range(6)] for label in shared}
        for label in shared:
            for _ in range(15):
                words = [rng.choice(own[label]) for _word in range(6)]
                if rng.random() < 0.6:
                    words.append(shared[label])
                if rng.random() < 0.3:
                    words.append(shared[rng.choice([other for other in shared if other != label])])
                X.append((repo, " ".join(words)))
                y.append(label)
    return X, y


def train_install_evaluate(tmp_path, capsys, kind: str, per_label: int = 12):
    """`wcml train --kind KIND` on synthetic issues, the bundle reloaded through the allow-list, then
    `wcml evaluate` on fresh ones: (bundle, evaluation report)."""
    train_file, test_file = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in synthetic(per_label=per_label)))
    test_file.write_text("".join(json.dumps(r) + "\n" for r in synthetic(seed=1, per_label=4)))
    models = tmp_path / "models"
    assert main(["train", "issuetype", "--kind", kind, "--data", str(train_file),
                 "--models-dir", str(models), "--version", "v1"]) == 0
    bundle = load_bundle(models, "issuetype", "v1")
    assert isinstance(bundle.pipeline, RepoRouter) and bundle.manifest["metrics"]["kind"] == kind
    capsys.readouterr()
    assert main(["evaluate", "issuetype", "--model", str(models / "issuetype" / "v1"),
                 "--data", str(test_file), "--json"]) == 0
    return bundle, json.loads(capsys.readouterr().out)
