"""Training with cross-validated metrics, evaluation reports, and the demo bundles."""

from __future__ import annotations

import dataclasses

import pytest

from services.predictor.serving.bundle import list_versions, load_bundle
from services.predictor.tasks import TASKS, get_task
from services.predictor.training.demo import ensure_demo_bundles, load_demo
from services.predictor.training.training import TrainingError, evaluate, fingerprint, format_report, train
from shared.messages import IssueSnapshot


def _issue(title: str, body: str = "") -> IssueSnapshot:
    return IssueSnapshot("webcompat/web-bugs", 1, "https://github.com/webcompat/web-bugs/issues/1",
                         title, body, None)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models")
    lines: list[str] = []
    assert ensure_demo_bundles(path, list(TASKS), announce=lines.append, starter=False) == list(TASKS)
    assert len(lines) == len(TASKS)
    for name, line in zip(TASKS, lines, strict=True):
        assert line.startswith(f"no model installed for {name}: trained a demo model") and "\n" not in line
        assert str(path / name) in line
    return path


def test_fingerprint_ignores_order_but_not_content():
    base = fingerprint(["a", "b"], ["x", "y"])
    assert base == fingerprint(["b", "a"], ["y", "x"])
    assert base != fingerprint(["a", "b"], ["y", "x"])
    assert base != fingerprint(["a", "b "], ["x", "y"])
    assert len(base) == 64


def test_demo_data_is_balanced_and_well_formed():
    for name, task in TASKS.items():
        issues, labels = load_demo(name)
        assert {label: labels.count(label) >= 40 for label in task.labels} == dict.fromkeys(task.labels, True)
        assert all(i.title and i.body and i.url.endswith(f"/issues/{i.number}") for i in issues)


def test_cv_folds_follow_the_smallest_class_and_metrics_are_complete():
    task = get_task("needsdiagnosis")
    issues, labels = load_demo(task.name)
    picked = [i for i, label in enumerate(labels) if label == "needsdiagnosis"][:3]
    picked += [i for i, label in enumerate(labels) if label == "not-needsdiagnosis"][:20]
    pipeline, metrics = train(task, [issues[i] for i in picked], [labels[i] for i in picked])
    assert metrics["cv_folds"] == 3 and metrics["n"] == 23
    assert set(metrics["per_label"]) == set(task.labels)
    assert metrics["per_label"]["needsdiagnosis"]["support"] == 3
    assert {"accuracy", "macro_f1", "confusion", "thresholds"} <= set(metrics)
    assert sorted(pipeline.classes_) == sorted(task.labels)


def test_train_refuses_unusable_data():
    task = get_task("issuetype")
    issues = [_issue(f"t{i}") for i in range(5)]
    with pytest.raises(TrainingError, match="unknown label"):
        train(task, issues, ["bug", "bug", "feature", "feature", "spam"])
    with pytest.raises(TrainingError, match=r"at least 2 examples of every label, have question \(1\)"):
        train(task, issues, ["bug", "bug", "feature", "feature", "question"])
    with pytest.raises(TrainingError, match="5 issues but 4 labels"):
        train(task, issues, ["bug"] * 4)


def test_demo_bundles_are_installed_once_with_metrics(models_dir):
    for name in TASKS:
        assert len(list_versions(models_dir, name)) == 1
        manifest = load_bundle(models_dir, name).manifest
        assert manifest["data"]["source"] == "demo" and manifest["data"]["size"] >= 80
        assert manifest["metrics"]["cv_folds"] == 5 and manifest["metrics"]["macro_f1"] > 0.7
    assert ensure_demo_bundles(models_dir, list(TASKS), announce=pytest.fail) == []


def test_demo_models_predict_obvious_inputs(models_dir):
    nd = load_bundle(models_dir, "needsdiagnosis")
    spam = _issue("cheap-followers.example - see bug description",
                  "**Steps to Reproduce**:\nBuy real followers cheap, best casino bonus, "
                  "visit our site now!!!")
    real = _issue("www.youtube.com - video or audio doesn't play",
                  "**Steps to Reproduce**:\nThe video stays on a black screen with the spinner and the audio "
                  "never starts. Works in Chrome.")
    assert [s.label for s in nd.predict([spam, real])] == ["not-needsdiagnosis", "needsdiagnosis"]

    it = load_bundle(models_dir, "issuetype")
    inputs = [
        _issue("Crash when opening settings", "Steps to reproduce\n1. Open settings\n\n"
               "Expected behavior\nNo crash\n\nActual behavior\n"
               "```\nTraceback (most recent call last):\nTypeError: 'NoneType'\n```"),
        _issue("It would be nice to have an export button", "It would be great if we could export to CSV."),
        _issue("How do I change the language?", "I can't find the setting. How can I change it?"),
    ]
    assert [s.label for s in it.predict(inputs)] == ["bug", "feature", "question"]


def test_evaluate_report_has_the_threshold_table(models_dir):
    bundle = load_bundle(models_dir, "issuetype")
    issues, labels = load_demo("issuetype")
    report = evaluate(bundle, issues, labels)
    assert (report["task"], report["model_version"]) == ("issuetype", bundle.version)
    assert report["n"] == len(issues)
    assert report["accuracy"] > 0.9  # its own training data
    assert sum(map(sum, report["confusion"]["matrix"])) == len(issues)
    assert [row["threshold"] for row in report["thresholds"]] == [0.6, 0.7, 0.8, 0.9, 0.95, 0.97]
    confidences = [s.confidence for s in bundle.predict(issues)]
    classified = [row["classified"] for row in report["thresholds"]]
    assert classified == [sum(c >= t for c in confidences) for t in (0.6, 0.7, 0.8, 0.9, 0.95, 0.97)]
    assert classified[0] > classified[-1]
    for row in report["thresholds"]:
        assert row["share"] == pytest.approx(row["classified"] / len(issues), abs=1e-4)
        assert set(row["per_label"]) == {"bug", "feature", "question"}
    text = format_report(report)
    assert f"model {bundle.version}" in text and "confusion matrix" in text
    for t in ("0.6", "0.7", "0.8", "0.9", "0.95", "0.97"):
        assert f">= {t} " in text
    assert text.count("\n") > 15


def test_evaluate_refuses_labels_the_model_does_not_know(models_dir):
    bundle = load_bundle(models_dir, "needsdiagnosis")
    with pytest.raises(TrainingError, match="unknown to model"):
        evaluate(bundle, [_issue("x")], ["bug"])


def test_evaluate_counts_a_wrong_prediction(models_dir):
    bundle = load_bundle(models_dir, "issuetype")
    question = _issue("How do I change the language?", "How can I change it?")
    report = evaluate(bundle, [question, dataclasses.replace(question, number=2)], ["question", "bug"])
    assert report["accuracy"] == 0.5
    assert report["confusion"]["matrix"][0] == [0, 0, 1]  # the "bug" was predicted "question"
