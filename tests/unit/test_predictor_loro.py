"""Leave-one-repository-out evaluation: what is trained on, what is scored, and the command's table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from services.cli import main
from services.predictor.kinds import default_kind
from services.predictor.tasks import get_task
from services.predictor.training.loro import (
    BASELINE,
    LoroError,
    baseline_model,
    format_loro,
    held_out_repos,
    leave_one_repo_out,
)
from shared.messages import IssueSnapshot
from tests.predictor_builders import WORDS, synthetic

IT = get_task("issuetype")


def _issue(repo: str, number: int, title: str, body: str = "") -> IssueSnapshot:
    return IssueSnapshot(repo, number, f"https://github.com/{repo}/issues/{number}", title, body, None)


class Parrot:
    """Predicts the first word of each text (the title), and remembers the texts it was fitted on."""

    fitted_on: list[list[str]] = []

    def fit(self, X, y):
        Parrot.fitted_on.append(list(X))
        return self

    def predict(self, X):
        return np.array([t.split()[0] for t in X], dtype=object)


def _parrot_data():
    """Three repositories; each issue's title is what the parrot will predict, its body names the repo."""
    rows = {"a/one": [("bug", "bug")] * 4 + [("feature", "feature")] * 4 + [("question", "question")] * 4,
            "b/two": [("bug", "bug")] * 4 + [("bug", "feature")] * 4 + [("question", "question")] * 4,
            "c/three": [("feature", "bug")] * 6 + [("question", "question")] * 6,
            "d/tiny": [("bug", "bug")] * 3 + [("feature", "feature")] * 3}  # too small to score alone
    issues, labels = [], []
    for repo, pairs in rows.items():
        for n, (said, truth) in enumerate(pairs, 1):
            issues.append(_issue(repo, n, said, f"from {repo}"))
            labels.append(truth)
    return issues, labels, rows


def test_each_repository_is_scored_by_a_model_that_never_saw_it():
    issues, labels, rows = _parrot_data()
    Parrot.fitted_on = []
    report = leave_one_repo_out(IT, issues, labels, {"parrot": Parrot})
    assert list(report["repos"]) == ["a/one", "b/two", "c/three"]
    assert report["train_only_repos"] == ["d/tiny"]
    assert len(Parrot.fitted_on) == 3
    for held_out, fitted in zip(report["repos"], Parrot.fitted_on, strict=True):
        assert not any(held_out in text for text in fitted)
        assert len(fitted) == len(issues) - len(rows[held_out])  # every other repository, tiny included
        assert any("d/tiny" in text for text in fitted)


def test_macro_f1_per_held_out_repository_and_the_unweighted_mean():
    issues, labels, rows = _parrot_data()
    report = leave_one_repo_out(IT, issues, labels, {"parrot": Parrot})
    expected = {}
    for repo in ("a/one", "b/two", "c/three"):
        said, truth = zip(*rows[repo], strict=True)
        expected[repo] = f1_score(truth, said, labels=list(IT.labels), average="macro", zero_division=0)
        assert report["repos"][repo]["parrot"] == pytest.approx(expected[repo], abs=1e-4)
        assert report["repos"][repo]["n"] == len(rows[repo])
    assert report["repos"]["a/one"]["parrot"] == 1.0
    assert report["mean_macro_f1"]["parrot"] == pytest.approx(np.mean(list(expected.values())), abs=1e-4)


def test_wins_over_the_baseline_are_counted_per_repository():
    issues, labels, _ = _parrot_data()

    class Bugs(Parrot):  # says "bug" to everything
        def predict(self, X):
            return np.array(["bug"] * len(X), dtype=object)

    report = leave_one_repo_out(IT, issues, labels, {"parrot": Parrot, BASELINE: Bugs})
    wins = sum(report["repos"][r]["parrot"] > report["repos"][r][BASELINE] for r in report["repos"])
    assert report["wins_over_baseline"] == {"parrot": wins}
    text = format_loro(report)
    assert f"parrot beats {BASELINE} on {wins} of 3 held-out repositories" in text
    assert any(line.startswith("mean ") for line in text.splitlines())
    assert text.splitlines()[-1] == "trained on, too small to score alone: d/tiny"


def test_one_repository_is_not_enough():
    rows = synthetic(repos=("acme/app",), per_label=5)
    issues = [_issue(r["repo"], r["number"], r["title"], r["body"]) for r in rows]
    with pytest.raises(LoroError, match="two or more repositories"):
        held_out_repos(issues, [r["label"] for r in rows])


def test_a_repository_of_one_label_is_trained_on_but_not_scored():
    issues = [_issue("a/one", n, "x") for n in range(12)] + [_issue("b/two", n, "y") for n in range(12)]
    labels = ["bug"] * 12 + ["bug", "feature"] * 6
    assert held_out_repos(issues, labels) == (["b/two"], ["a/one"])


def test_the_command_prints_the_table_for_the_model_and_the_pooled_baseline(tmp_path, capsys):
    """Three repositories that word their issues alike: both models can carry over to the one left out."""
    rows = [{**r, "repo": repo} for seed, repo in enumerate(("x/one", "y/two", "z/three"))
            for r in synthetic(repos=("acme/app",), per_label=12, seed=seed)]
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # no --kind: the default issuetype model (heavy, as scripts/test installs the ml extra)
    kind, _ = default_kind(get_task("issuetype"))
    assert kind == "heavy"
    assert main(["evaluate", "issuetype", "--leave-one-repo-out", "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"] == [kind, BASELINE] and list(report["repos"]) == ["x/one", "y/two", "z/three"]
    for row in report["repos"].values():
        assert row["n"] == 36 and row["train_n"] == 72
        assert row[kind] > 1 / 3 and row[BASELINE] > 1 / 3  # better than chance on unseen wording
    assert set(report["thresholds"]) == {kind, BASELINE}  # confidence on unseen repositories
    for table in report["thresholds"].values():
        classified = [row["classified"] for row in table]
        assert classified == sorted(classified, reverse=True) and classified[0] <= 3 * 36
    assert main(["evaluate", "issuetype", "--leave-one-repo-out", "--kind", "light",
                 "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "leave-one-repository-out" in out and f"light beats {BASELINE} on" in out


def test_the_baseline_is_a_plain_pooled_tfidf_logistic_regression():
    model = baseline_model()
    texts = [" ".join([w] * 3) for label in WORDS for w in WORDS[label].split()]
    labels = [label for label in WORDS for _ in WORDS[label].split()]
    model.fit(texts, labels)
    assert set(model.predict(["crash error broken"])) == {"bug"}
