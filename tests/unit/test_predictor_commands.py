"""`wcml dataset build`, `wcml train`, `wcml evaluate`, and the per-repository router they rely on."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from services.cli import main
from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import load_bundle
from services.predictor.tasks import get_task
from services.predictor.tasks.base import text_pipeline
from shared.messages import IssueSnapshot
from tests.predictor_builders import WORDS, synthetic

IT = get_task("issuetype")


def test_router_keeps_one_model_per_repository_and_falls_back_for_others():
    rows = synthetic()
    X = [(r["repo"], r["title"] + "\n" + r["body"]) for r in rows]
    y = [r["label"] for r in rows]
    router = RepoRouter(text_pipeline(), min_examples=30).fit(X, y)
    assert router.repos_ == ["acme/app", "acme/lib"]
    assert list(router.classes_) == ["bug", "feature", "question"]
    accuracy = np.mean(router.predict(X) == np.array(y, dtype=object))
    assert accuracy > 0.95
    proba = router.predict_proba([("other/repo", "crash error traceback"), ("acme/lib", "crash error")])
    assert proba.shape == (2, 3) and np.allclose(proba.sum(axis=1), 1)
    small = RepoRouter(text_pipeline(), min_examples=1000).fit(X, y)
    assert small.repos_ == []  # too few issues everywhere: the pooled model answers for all


def test_an_unseen_repository_is_answered_by_the_fallback_model_when_one_is_given():
    rows = synthetic()
    X = [(r["repo"], r["title"] + "\n" + r["body"]) for r in rows]
    y = [r["label"] for r in rows]
    router = RepoRouter(text_pipeline(), fallback=DummyClassifier(strategy="constant", constant="feature"))
    router.fit(X, y)
    assert router.repos_ == ["acme/app", "acme/lib"] and isinstance(router.fallback_, DummyClassifier)
    seen, unseen = ("acme/app", "how can I anyone know"), ("other/repo", "how can I anyone know")
    assert list(router.predict([seen, unseen])) == ["question", "feature"]
    default = RepoRouter(text_pipeline()).fit(X, y)
    assert default.predict([unseen])[0] == "question"  # without one, the estimator pooled over all


def test_a_repository_model_learns_from_other_repositories_at_their_weight():
    """acme/app's questions never say "anyone know"; acme/lib's always do. Only a model that also
    learned from acme/lib's issues knows what that wording means in acme/app."""
    rng = random.Random(0)
    vocab = {("acme/app", "question"): "how can I is it possible",
             ("acme/lib", "question"): "anyone know help",
             **{(repo, label): WORDS[label] for repo in ("acme/app", "acme/lib")
                for label in ("bug", "feature")}}
    X, y = [], []
    for (repo, label), words in vocab.items():
        for _ in range(20):
            X.append((repo, " ".join(rng.choice(words.split()) for _word in range(8))))
            y.append(label)
    asked = [("acme/app", "anyone know anyone know help")]
    question = 2  # column of "question" in classes_
    alone = RepoRouter(text_pipeline(), others_weight=0.0).fit(X, y).predict_proba(asked)[0, question]
    shared = RepoRouter(text_pipeline(), others_weight=0.3).fit(X, y).predict_proba(asked)[0, question]
    assert alone < 0.5 < shared


@pytest.fixture
def nlbse_like(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in synthetic()))
    test = tmp_path / "test.csv"
    rows = synthetic(seed=1, per_label=5)
    test.write_text("repo,created_at,label,title,body\n" + "".join(
        f'{r["repo"]},2024-01-01,{r["label"]},"{r["title"]}","{r["body"]}"\n' for r in rows))
    return path, test


def test_train_then_evaluate_prints_the_nlbse_table(tmp_path, nlbse_like, capsys):
    train_file, test_file = nlbse_like
    models = tmp_path / "models"
    assert main(["train", "issuetype", "--kind", "light", "--data", str(train_file),
                 "--models-dir", str(models), "--version", "v1"]) == 0
    out = capsys.readouterr().out
    assert "5-fold cross-validation" in out and "per repository" in out
    assert str(models / "issuetype" / "v1") in out
    bundle = load_bundle(models, "issuetype", "v1")
    assert isinstance(bundle.pipeline, RepoRouter)
    manifest = bundle.manifest
    assert manifest["data"]["size"] == 120 and len(manifest["data"]["fingerprint"]) == 64
    assert manifest["metrics"]["per_repo"]["mean_macro_f1"] > 0.9 and manifest["metrics"]["kind"] == "light"

    assert main(["evaluate", "issuetype", "--model", str(models / "issuetype" / "v1"),
                 "--data", str(test_file)]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix" in out and ">= 0.97" in out
    table = out[out.index("per repository"):].split("\n\n")[0].splitlines()
    assert "what a rule with that min_precision acts on" in out  # calibrated: promised, beside observed
    assert [line.split()[0] for line in table[2:]] == ["acme/app", "acme/lib", "mean"]
    # a pooled model scores ~0.7 here (the two repositories swap two labels' wording); each repository's
    # own model, even borrowing from the other at the task's others_weight, stays near 0.9
    assert float(table[-1].split()[-1]) > 0.85

    assert main(["evaluate", "issuetype", "--models-dir", str(models), "--data", str(test_file),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_version"] == "v1" and set(report["per_repo"]["repos"]) == {"acme/app", "acme/lib"}


def test_a_tampered_bundle_is_refused_by_evaluate(tmp_path, nlbse_like, capsys):
    train_file, test_file = nlbse_like
    models = tmp_path / "models"
    main(["train", "issuetype", "--kind", "light", "--data", str(train_file),
          "--models-dir", str(models), "--version", "v1"])
    model_file = models / "issuetype" / "v1" / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    capsys.readouterr()
    assert main(["evaluate", "issuetype", "--models-dir", str(models), "--data", str(test_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wcml evaluate: bundle issuetype/v1: model.skops sha256 mismatch")
    assert "\n" not in err


def test_dataset_build_from_an_export_then_train(tmp_path, capsys):
    export = tmp_path / "export.jsonl"
    with open(export, "w") as f:
        for r in synthetic(repos=("acme/app",)):
            issue = {"number": r["number"], "title": r["title"], "body": r["body"], "user": {"login": "x"},
                     "html_url": f"https://github.com/acme/app/issues/{r['number']}",
                     "repository_url": "https://api.github.com/repos/acme/app",
                     "labels": [{"name": {"feature": "enhancement"}.get(r["label"], r["label"])}]}
            f.write(json.dumps({**issue, "events": []}) + "\n")
        unlabelled = {"number": 999, "title": "no type", "labels": [{"name": "p1"}], "events": []}
        f.write(json.dumps(unlabelled) + "\n")
    out = tmp_path / "data" / "it.jsonl"
    assert main(["dataset", "build", "issuetype", "--export", str(export), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "60 labelled issue(s) from 61 (1 left out by the issuetype rules)" in printed
    assert "bug 20, feature 20, question 20" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["repo"] == "acme/app" and {r["label"] for r in rows} == {"bug", "feature", "question"}
    assert main(["train", "issuetype", "--kind", "light", "--data", str(out),
                 "--models-dir", str(tmp_path / "m")]) == 0


def test_commands_report_user_errors_in_one_line(tmp_path, capsys):
    assert main(["train", "issuetype", "--data", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err.strip() == f"wcml train: no such data file: {tmp_path / 'none.csv'}"
    assert main(["train", "nosuchtask", "--data", "x.csv"]) == 2
    assert "unknown task 'nosuchtask'" in capsys.readouterr().err
    assert main(["evaluate", "issuetype", "--models-dir", str(tmp_path), "--data", "x.csv"]) == 2
    assert "no model installed for issuetype" in capsys.readouterr().err


def test_snapshots_route_by_repo_through_a_bundle(tmp_path, nlbse_like):
    train_file, _ = nlbse_like
    main(["train", "issuetype", "--kind", "light", "--data", str(train_file),
          "--models-dir", str(tmp_path), "--version", "v1"])
    bundle = load_bundle(tmp_path, "issuetype", "v1")
    text = "crash error exception traceback broken"
    scored = bundle.predict([IssueSnapshot(repo, 1, "u", text, text, None)
                             for repo in ("acme/app", "acme/lib", "unknown/repo")])
    assert [s.label for s in scored[:2]] == ["bug", "feature"]  # acme/lib swaps the words
    assert scored[2].label in IT.labels


def test_issuetype_trains_the_heavy_model_by_default_where_the_ml_extra_is_installed(monkeypatch, capsys):
    """Heavy is the issuetype model that holds both on NLBSE'24 (0.790) and on unseen repositories
    (docs/predictor.md); without its extra, the light one, with a note saying why."""
    from services.predictor import kinds
    from services.predictor.training.commands import chosen_kind

    assert kinds.available("heavy")  # scripts/test installs the ml extra
    assert kinds.default_kind(IT) == ("heavy", None)
    assert kinds.default_kind(get_task("needsdiagnosis")) == ("light", None)
    assert chosen_kind(IT, "light") == "light"
    real = kinds.importlib.util.find_spec
    monkeypatch.setattr(kinds.importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentence_transformers" else real(name, *a))
    assert chosen_kind(IT, None) == "light"
    assert "needs the 'ml' extra" in capsys.readouterr().err
