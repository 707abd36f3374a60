"""Model bundles: round trip, integrity and type checks before loading, version selection."""

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from services.predictor.kinds import make_pipeline
from services.predictor.serving import bundle as bundle_mod
from services.predictor.serving.bundle import BundleError, list_versions, load_bundle, write_bundle
from services.predictor.tasks import get_task
from services.predictor.tasks.base import Task
from services.predictor.training.demo import load_demo
from shared.messages import IssueSnapshot

TASK = get_task("needsdiagnosis")


@pytest.fixture(scope="module")
def fitted():
    issues, labels = load_demo(TASK.name)
    return make_pipeline(TASK).fit([TASK.text(i) for i in issues], labels), issues


def _write(models_dir, pipeline, version=None):
    return write_bundle(models_dir, TASK, pipeline, data_fingerprint="f" * 64, data_size=96,
                        metrics={"macro_f1": 0.9}, version=version, thresholds={"needsdiagnosis": 0.8})


def _forbid_deserialising(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("deserialised before the check")
    monkeypatch.setattr(bundle_mod.sio, "loads", boom)
    monkeypatch.setattr(bundle_mod.sio, "load", boom)


def test_round_trip_manifest_and_predictions(tmp_path, fitted):
    pipeline, issues = fitted
    path = _write(tmp_path, pipeline)
    assert re.fullmatch(r"\d{8}T\d{6}Z", path.name)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.skops"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp dir left behind
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256((path / "model.skops").read_bytes()).hexdigest()
    assert (manifest["task"], manifest["version"]) == (TASK.name, path.name)
    assert manifest["model_file"] == "model.skops"
    assert manifest["labels"] == sorted(TASK.labels) and manifest["thresholds"] == {"needsdiagnosis": 0.8}
    assert manifest["data"] == {"fingerprint": "f" * 64, "size": 96}
    assert set(manifest["libraries"]) == {"python", "sklearn", "numpy", "scipy", "skops"}
    assert manifest["created_at"].endswith("+00:00")

    loaded = load_bundle(tmp_path, TASK.name)
    assert (loaded.version, loaded.path, loaded.task) == (path.name, path, TASK)
    batch = issues[:20]
    scored = loaded.predict(batch)
    expected = pipeline.predict_proba([TASK.text(i) for i in batch])
    assert len(scored) == 20
    for s, row in zip(scored, expected, strict=True):
        assert s.probabilities == pytest.approx(dict(zip(manifest["labels"], row, strict=True)))
        assert s.confidence == pytest.approx(row.max()) and s.label == manifest["labels"][row.argmax()]
    assert loaded.predict([]) == []


def test_tampered_model_is_refused_before_deserialising(tmp_path, fitted, monkeypatch):
    path = _write(tmp_path, fitted[0], version="20261129T120000Z")
    with open(path / "model.skops", "ab") as f:
        f.write(b"\0")
    _forbid_deserialising(monkeypatch)
    monkeypatch.setattr(bundle_mod.sio, "get_untrusted_types", lambda **kw: pytest.fail("inspected first"))
    with pytest.raises(BundleError, match=r"^bundle needsdiagnosis/20261129T120000Z: model.skops sha256 "
                                          r"mismatch \(manifest [0-9a-f]{12}…, file [0-9a-f]{12}…\)$"):
        load_bundle(tmp_path, TASK.name)


def test_untrusted_type_is_refused_even_with_a_matching_hash(tmp_path, fitted, monkeypatch):
    path = _write(tmp_path, fitted[0], version="20261129T120000Z")
    evil = sio.dumps(Pipeline([("run", FunctionTransformer(func=os.system))]))
    (path / "model.skops").write_bytes(evil)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(evil).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    _forbid_deserialising(monkeypatch)
    with pytest.raises(BundleError, match=r"types outside the allow-list: (posix|nt)\.system$"):
        load_bundle(tmp_path, TASK.name)


def _shout(texts):
    return [t.upper() for t in texts]


def test_write_refuses_a_pipeline_that_could_not_be_loaded(tmp_path):
    pipeline = Pipeline([("shout", FunctionTransformer(_shout)), ("tfidf", TfidfVectorizer()),
                         ("clf", LogisticRegression())]).fit(["site broken", "buy followers"] * 2,
                                                             ["needsdiagnosis", "not-needsdiagnosis"] * 2)
    with pytest.raises(BundleError, match="_shout"):
        _write(tmp_path, pipeline, version="20261129T120000Z")
    assert list((tmp_path / TASK.name).iterdir()) == []


def test_newest_version_is_selected_and_junk_is_ignored(tmp_path, fitted):
    for version in ("20260101T000000Z", "20261129T120000Z", "20260601T000000Z"):
        _write(tmp_path, fitted[0], version=version)
    (tmp_path / TASK.name / ".tmp-20991231T000000Z-abc").mkdir()  # an interrupted write
    (tmp_path / TASK.name / "20991231T000000Z").mkdir()  # no manifest
    assert list_versions(tmp_path, TASK.name) == ["20260101T000000Z", "20260601T000000Z", "20261129T120000Z"]
    assert load_bundle(tmp_path, TASK.name).version == "20261129T120000Z"
    assert load_bundle(tmp_path, TASK.name, "20260601T000000Z").version == "20260601T000000Z"
    with pytest.raises(BundleError, match="not installed"):
        load_bundle(tmp_path, TASK.name, "20250101T000000Z")
    with pytest.raises(BundleError, match="already exists"):
        _write(tmp_path, fitted[0], version="20260101T000000Z")


def test_missing_bundle_and_bad_names(tmp_path):
    expected = f"no model installed for issuetype: no bundle in {tmp_path}/issuetype"
    with pytest.raises(BundleError, match=expected):
        load_bundle(tmp_path, "issuetype")
    with pytest.raises(BundleError, match="invalid version name"):
        load_bundle(tmp_path, "issuetype", "../../etc")
    assert list_versions(tmp_path, "needsdiagnosis") == []


def test_manifest_labels_must_match_the_model(tmp_path, fitted):
    path = _write(tmp_path, fitted[0], version="20261129T120000Z")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["labels"] = list(reversed(manifest["labels"]))
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="do not match manifest labels"):
        load_bundle(tmp_path, TASK.name)


def test_model_classes_must_belong_to_the_task(tmp_path, fitted):
    other = Task(name="needsdiagnosis", labels=("bug", "feature"))
    with pytest.raises(BundleError, match="not labels of task"):
        write_bundle(tmp_path, other, fitted[0], data_fingerprint="x", data_size=1, metrics={})


def test_scored_confidence_is_the_top_probability(tmp_path, fitted):
    _write(tmp_path, fitted[0])
    issue = IssueSnapshot("webcompat/web-bugs", 1, "u", "www.example.com - video or audio doesn't play",
                          "The video stays black, works in Chrome.", None)
    (scored,) = load_bundle(tmp_path, TASK.name).predict([issue])
    assert scored.confidence == max(scored.probabilities.values())
    assert sum(scored.probabilities.values()) == pytest.approx(1.0)
