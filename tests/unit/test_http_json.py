"""Every service's JSON answers: encoded by orjson in the shape Flask's own encoder gives them."""

import json
import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from flask import Blueprint, Flask, jsonify

from shared.http import app_for

VALUES = {
    "record": {"id": 7, "label": "bug", "confidence": 0.75, "probabilities": {"bug": 0.75, "ok": 0.25},
               "stored_at": "2026-12-03T10:00:00.000001+00:00", "replay_id": None, "fills_live": True,
               "title": "Ünïcode — and \"quotes\"\n"},
    "a date": datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
    "an integer past 64 bits": 2**70,
    "a decimal": Decimal("1.25"),
    "integer keys": {1: "one", 2: "two"},
}


def answers(value):
    page = Blueprint("page", __name__)
    page.get("/")(lambda: jsonify(items=[value], next_cursor=None))
    ours = app_for("test", [page], ping=lambda: None).test_client().get("/")
    flask = Flask("plain")
    flask.register_blueprint(page)
    return ours, flask.test_client().get("/")


@pytest.mark.parametrize("name", VALUES)
def test_an_answer_reads_as_flasks_own_would(name):
    ours, theirs = answers(VALUES[name])
    assert ours.mimetype == theirs.mimetype == "application/json"
    assert ours.get_json() == theirs.get_json()
    assert ours.data.endswith(b"\n") and b": " not in ours.data  # compact, one line


def test_keys_are_sorted_as_before():
    ours, theirs = answers({"b": 1, "a": {"d": 2, "c": 3}})
    assert ours.data == theirs.data


def test_nan_is_null_not_invalid_json():
    ours, _ = answers({"score": math.nan})
    assert json.loads(ours.data) == {"items": [{"score": None}], "next_cursor": None}
