"""Calibrated probability and measured precision: fitted in training on held-out predictions, kept in
the bundle's manifest, applied by scope (a repository the bundle was trained on, or one it never saw)
to every prediction, and checked against what a data set shows (`wcml evaluate`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.predictor import calibration
from services.predictor.calibration import MIN_SUPPORT, Calibration, CalibrationError, lower_bound
from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import BundleError, load_bundle, write_bundle
from services.predictor.tasks import get_task
from services.predictor.tasks.base import text_pipeline
from services.predictor.training.training import evaluate, train
from shared.messages import IssueSnapshot
from tests.predictor_builders import own_words_repos

IT = get_task("issuetype")
CLASSES = ["bug", "feature", "question"]


def held_out(n: int, confidence: float, accuracy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` predictions, each ``confidence`` sure of its label, right ``accuracy`` of the time."""
    rng = np.random.default_rng(seed)
    predicted = rng.integers(0, 3, n)
    proba = np.full((n, 3), (1 - confidence) / 2)
    proba[np.arange(n), predicted] = confidence
    right = rng.random(n) < accuracy
    truth = np.where(right, predicted, (predicted + rng.integers(1, 3, n)) % 3)
    return proba, truth


def log_loss(proba: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.log(proba[np.arange(len(truth)), truth]).mean())


@pytest.mark.parametrize(("confidence", "accuracy", "direction"),
                         [(0.95, 0.7, "softer"), (0.5, 0.9, "sharper")])
def test_the_temperature_makes_confidence_fit_the_outcomes_without_changing_a_label(
        confidence, accuracy, direction):
    proba, truth = held_out(600, confidence, accuracy)
    fitted = calibration.fit(CLASSES, proba, truth)
    assert (fitted.temperature > 1) if direction == "softer" else (fitted.temperature < 1)
    calibrated = fitted.apply(proba)
    assert (calibrated.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert np.allclose(calibrated.sum(axis=1), 1)
    assert log_loss(calibrated, truth) < log_loss(proba, truth)
    assert calibrated.max(axis=1).mean() == pytest.approx(accuracy, abs=0.05)


def test_precision_is_read_per_label_from_the_highest_threshold_with_enough_support():
    proba = np.array([[0.95, 0.03, 0.02]] * 30 + [[0.75, 0.15, 0.10]] * 50 + [[0.1, 0.85, 0.05]] * 40)
    truth = np.array([0] * 29 + [1] + [0] * 35 + [2] * 15 + [1] * 20 + [0] * 20)
    fitted = Calibration(1.0, calibration.precision_tables(CLASSES, proba, truth))
    rows = {t: (p, n) for t, p, n in fitted.tables["bug"]}
    assert rows[0.9] == (pytest.approx(29 / 30, abs=1e-4), 30)
    assert rows[0.7] == (pytest.approx(64 / 80, abs=1e-4), 80)
    # what a prediction promises: the lower end of the measured precision's 95% interval
    assert fitted.precision_at("bug", 0.96) == lower_bound(0.9667, 30) == pytest.approx(0.864, abs=1e-3)
    assert fitted.precision_at("bug", 0.8) == lower_bound(0.9667, 30)  # the 0.8 row: those 30
    assert fitted.precision_at("bug", 0.75) == lower_bound(0.8, 80)  # the 0.7 row: all 80
    assert fitted.precision_at("feature", 0.99) == lower_bound(0.5, 40)  # none that sure: 0.85's row
    assert fitted.precision_at("question", 0.9) is None  # never predicted: nothing measured
    thin = Calibration(1.0, {"bug": ((0.0, 0.7, 100), (0.9, 1.0, MIN_SUPPORT - 1))})
    assert thin.precision_at("bug", 0.95) == lower_bound(0.7, 100)  # too few that sure: the row below


@pytest.mark.parametrize(("share", "n"), [(0.5, 20), (0.9, 40), (0.97, 300), (1.0, 25), (0.0, 50)])
def test_the_lower_bound_is_below_the_share_and_closes_in_as_the_sample_grows(share, n):
    assert 0 <= lower_bound(share, n) <= share
    assert lower_bound(share, n) <= lower_bound(share, 10 * n) <= share


def test_a_calibration_survives_json_and_a_malformed_one_is_refused():
    proba, truth = held_out(200, 0.8, 0.6)
    fitted = calibration.fit(CLASSES, proba, truth)
    again = Calibration.from_json(json.loads(json.dumps(fitted.to_json())))
    assert again.tables == fitted.tables and again.temperature == pytest.approx(fitted.temperature)
    for bad in ({"temperature": 0, "precision": {}}, {"temperature": 1.0},
                {"temperature": 1.0, "precision": {"bug": [{"threshold": 0.5, "precision": 1.5, "n": 3}]}},
                {"temperature": "hot", "precision": {}}, []):
        with pytest.raises(CalibrationError):
            Calibration.from_json(bad)


def issues_of(pairs) -> list[IssueSnapshot]:
    return [IssueSnapshot(repo, n, f"https://github.com/{repo}/issues/{n}", text, "", None)
            for n, (repo, text) in enumerate(pairs, 1)]


@pytest.fixture(scope="module")
def four_repos():
    """A router trained on four repositories that each word their issues their own way."""
    X, y = own_words_repos(("r/1", "r/2", "r/3", "r/4"))
    issues = issues_of(X)
    model, metrics = train(IT, issues, y)
    return model, metrics


def test_training_measures_both_scopes_and_scores_the_fallback_by_repository(four_repos):
    _, metrics = four_repos
    assert set(metrics["calibration"]) == {"trained", "unseen"}
    assert set(metrics["unseen"]["per_repo"]["repos"]) == {"r/1", "r/2", "r/3", "r/4"}
    assert metrics["unseen"]["n"] == metrics["n"] == 180  # every issue scored once by a fallback without it
    unseen = metrics["calibration"]["unseen"]["precision"]
    assert sum(rows[0]["n"] for rows in unseen.values()) == 180  # the tables' first rows: all of them


def test_a_prediction_carries_the_calibration_of_its_scope(tmp_path, four_repos):
    model, metrics = four_repos
    write_bundle(tmp_path, IT, model, data_fingerprint="f", data_size=1, metrics=metrics, version="v1")
    bundle = load_bundle(tmp_path, "issuetype", "v1")
    assert "calibration" not in bundle.manifest["metrics"]
    assert set(bundle.calibrations) == {"trained", "unseen"}
    X, y = own_words_repos(("r/1", "r/9"), seed=1)  # a repository it was trained on, and a new one
    issues = issues_of(X)
    scored = bundle.predict(issues)
    proba = model.predict_proba([(i.repo, IT.text(i)) for i in issues])
    for issue, s, row in zip(issues, scored, proba, strict=True):
        scope = bundle.calibrations["trained" if issue.repo == "r/1" else "unseen"]
        calibrated = scope.apply(row[None, :])[0]
        assert s.confidence == pytest.approx(row.max()) and s.probability == pytest.approx(calibrated.max())
        assert s.precision == scope.precision_at(s.label, s.probability)
    # on the new repository, calibrated confidence fits what happens better than the model's own
    new = np.array([i.repo == "r/9" for i in issues])
    truth = np.searchsorted(CLASSES, np.array(y, dtype=object)[new])
    calibrated = bundle.calibrations["unseen"].apply(proba[new])
    assert log_loss(calibrated, truth) < log_loss(proba[new], truth)


def test_evaluate_sets_the_promised_precision_beside_the_observed(tmp_path, four_repos):
    model, metrics = four_repos
    write_bundle(tmp_path, IT, model, data_fingerprint="f", data_size=1, metrics=metrics, version="v1")
    X, y = own_words_repos(("r/2",), seed=2)
    bundle = load_bundle(tmp_path, "issuetype", "v1")
    report = evaluate(bundle, issues_of(X), y)
    scored = bundle.predict(issues_of(X))
    for row in report["promises"]:  # what a rule with this min_precision acts on, and how often it is right
        acted = [s.label == label for s, label in zip(scored, y, strict=True)
                 if s.precision >= row["min_precision"]]
        assert row["acted"] == len(acted)
        assert row["observed"] == (round(sum(acted) / len(acted), 4) if acted else None)
    assert report["promises"][0]["min_precision"] == 0.5


def test_a_bundle_without_calibration_scores_as_before(tmp_path):
    """A bundle written before calibration (no measure in its manifest): no probability, no precision."""
    X, y = own_words_repos(("r/1",))
    pooled = RepoRouter(text_pipeline(), min_examples=10**9).fit(X, y)
    write_bundle(tmp_path, IT, pooled, data_fingerprint="f", data_size=1, metrics={}, version="v1")
    (scored,) = load_bundle(tmp_path, "issuetype", "v1").predict(issues_of(X[:1]))
    assert scored.probability is None and scored.precision is None


def test_a_malformed_calibration_is_refused_when_written_and_when_loaded(tmp_path, four_repos):
    model, metrics = four_repos
    broken = {**metrics, "calibration": {"trained": {"temperature": -1, "precision": {}}}}
    with pytest.raises(BundleError, match="calibration"):
        write_bundle(tmp_path, IT, model, data_fingerprint="f", data_size=1, metrics=broken, version="v0")
    path = write_bundle(tmp_path, IT, model, data_fingerprint="f", data_size=1, metrics=metrics, version="v1")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["calibration"]["unseen"]["precision"] = "high"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="calibration is malformed"):
        load_bundle(tmp_path, "issuetype", "v1")
