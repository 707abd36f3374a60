"""The packaged starter issuetype bundle: what a fresh install predicts with, what it says of itself."""

from __future__ import annotations

import json
import socket

import pytest

from services.predictor.routing import RepoRouter
from services.predictor.serving.bundle import list_versions, load_bundle, new_version
from services.predictor.training.demo import DATA_CARD, ensure_demo_bundles, starter_bundle
from shared.messages import IssueSnapshot


def _issue(title: str, body: str) -> IssueSnapshot:
    return IssueSnapshot("someone/their-project", 7, "https://github.com/someone/their-project/issues/7",
                         title, body, None)


def test_the_starter_bundle_is_small_and_carries_its_data_card():
    path = starter_bundle("issuetype")
    assert path is not None
    assert sum(f.stat().st_size for f in path.iterdir()) < 5_000_000
    manifest = json.loads((path / "manifest.json").read_text())
    assert "NLBSE'24" in manifest["data"]["source"] and manifest["data"]["size"] == 1500
    card = (path.parent / DATA_CARD).read_text()
    for needed in ("NLBSE'24", "2927bc67eb42db8affd16eaf3e5a6d74f3063961", "Licence",
                   "leave-one-repository-out", manifest["version"]):
        assert needed in card
    assert starter_bundle("needsdiagnosis") is None  # no public data: the demo model stays


def test_a_fresh_install_gets_the_starter_for_issuetype_and_a_demo_for_needsdiagnosis(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)  # skops loads it offline
    lines: list[str] = []
    assert ensure_demo_bundles(tmp_path, ["issuetype", "needsdiagnosis"], announce=lines.append) == [
        "issuetype", "needsdiagnosis"]
    assert "installed the packaged starter model" in lines[0] and DATA_CARD in lines[0]
    assert "trained a demo model" in lines[1]
    bundle = load_bundle(tmp_path, "issuetype")
    assert bundle.version == starter_bundle("issuetype").name and (bundle.path / DATA_CARD).is_file()
    assert isinstance(bundle.pipeline, RepoRouter) and bundle.pipeline.repos_ == []  # the pooled model only
    inputs = [
        _issue("App crashes when opening settings", "Steps to reproduce\n1. Open settings\n\n"
               "Expected behavior\nNo crash\n\nActual behavior\n"
               "```\nTraceback (most recent call last):\nTypeError: 'NoneType' object is not callable\n```"),
        _issue("Feature request: add an option to export to CSV",
               "It would be great to have an option to export the table to CSV."),
        _issue("How do I change the language of the UI?", "I can't find the setting. How can I change it?"),
    ]
    scored = bundle.predict(inputs)
    assert [s.label for s in scored] == ["bug", "feature", "question"]
    # measured on repositories it was not trained on (leave-one-repository-out), as a user's is
    assert "unseen" in bundle.calibrations and all(0 < s.precision <= 1 for s in scored)
    assert new_version() > bundle.version  # a model the user trains later is the newer one
    assert ensure_demo_bundles(tmp_path, ["issuetype"], announce=pytest.fail) == []
    assert len(list_versions(tmp_path, "issuetype")) == 1
