"""bench.side_by_side's pure part: headline figures out of result JSON, the summary of rounds, the
alternation of the two versions. No benchmark runs here."""

import json

import pytest

from bench.side_by_side import (
    BENCHMARKS,
    FIGURES,
    HIGHER,
    LOADS,
    LOWER,
    ROOT,
    extract,
    schedule,
    summarize,
    table,
)

INGEST = {"benchmark": "ingest", "machine": {}, "ingest": {"requests_per_s": 1415.45, "p99_ms": 30.36},
          "bare_hmac_202": {"requests_per_s": 4910.81}, "ratio_to_bare": 0.288, "ingest_peak_rss_mib": 322.4}
LATENCY = {"runs": [{"offered_per_s": 100, "p50_ms": 39.0, "p99_ms": 97.9, "readable": 1500},
                    {"offered_per_s": 500, "p50_ms": 602.4, "p99_ms": 1491.4, "readable": 7365}],
           "peak_rss_mib": {"ingest": 320.4, "store": 149.1}}


def test_figures_of_ingest_with_the_better_direction():
    assert extract("ingest", INGEST) == {
        "ingest ingest.requests_per_s": (1415.45, HIGHER),
        "ingest ratio_to_bare": (0.288, HIGHER),
        "ingest ingest.p99_ms": (30.36, LOWER),
        "ingest ingest_peak_rss_mib": (322.4, LOWER),
    }


def test_lists_are_named_by_a_field_and_dicts_expanded_by_key():
    found = extract("latency", LATENCY)
    assert found["latency runs[100].p50_ms"] == (39.0, LOWER)
    assert found["latency runs[500].p99_ms"] == (1491.4, LOWER)
    assert found["latency runs[500].readable"] == (7365, HIGHER)
    assert found["latency peak_rss_mib.store"] == (149.1, LOWER)
    assert len(found) == 8


def test_missing_null_and_non_numeric_figures_are_left_out():
    doc = {"single_issue_ms": {"p50": 0.98}, "through_broker": None, "batch_issues_per_second": {"32": "n/a"}}
    assert extract("predictor", doc) == {"predictor single_issue_ms.p50": (0.98, LOWER)}
    assert extract("replay", {}) == {} and extract("ingest", LATENCY) == {}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_figure_is_found_in_this_tree_s_latest_results(name):
    path = ROOT / "bench" / "results" / "latest" / f"{name}.json"
    if not path.exists():
        pytest.skip(f"no {path}")
    found = extract(name, json.loads(path.read_text()))
    for figure in FIGURES[name]:
        prefix = f"{name} {figure.split('[')[0].split('*')[0]}"
        assert any(label.startswith(prefix) for label in found), figure
    assert name in LOADS


def test_summary_medians_ratios_and_verdicts():
    before = [{"a": (100.0, HIGHER), "b": (10.0, LOWER), "c": (1.0, LOWER)},
              {"a": (110.0, HIGHER), "b": (10.0, LOWER), "c": (1.0, LOWER)},
              {"a": (90.0, HIGHER), "b": (10.0, LOWER), "c": (1.0, LOWER)}]
    after = [{"a": (120.0, HIGHER), "b": (9.0, LOWER), "c": (1.2, LOWER)},
             {"a": (110.0, HIGHER), "b": (11.0, LOWER), "c": (1.1, LOWER)},
             {"a": (99.0, HIGHER), "b": (8.0, LOWER), "c": (1.3, LOWER)}]
    rows = {row["figure"]: row for row in summarize(before, after)}
    assert rows["a"]["before"] == 100.0 and rows["a"]["after"] == 110.0
    assert rows["a"]["ratio"] == pytest.approx([1.0, 1.1, 1.2]) and rows["a"]["better"] == HIGHER
    assert rows["a"]["verdict"] == "~"  # one round equal: not every round better
    assert rows["b"]["ratio"] == pytest.approx([0.8, 0.9, 1.1]) and rows["b"]["verdict"] == "~"
    assert rows["c"]["ratio"] == pytest.approx([1.1, 1.2, 1.3]) and rows["c"]["verdict"] == "worse"
    assert [row["rounds"] for row in rows.values()] == [3, 3, 3]
    (same,) = summarize([{"m": (324.0, LOWER)}], [{"m": (324.1, LOWER)}])
    assert same["verdict"] == "~"  # 1.000 as printed: no change


def test_summary_pairs_rounds_and_survives_failed_runs():
    before = [{"x": (200.0, HIGHER)}, {}, {"x": (0.0, HIGHER)}]
    after = [{"x": (300.0, HIGHER)}, {"x": (250.0, HIGHER)}, {"x": (10.0, HIGHER)}]
    (row,) = summarize(before, after)
    assert row["ratio"] == [1.5, 1.5, 1.5] and row["rounds"] == 1 and row["verdict"] == "better"
    assert row["before"] == 100.0 and row["after"] == 250.0
    (only_after,) = summarize([{}], [{"y": (5.0, LOWER)}])
    assert only_after["ratio"] is None and only_after["before"] is None and only_after["verdict"] == "~"
    assert "| y | lower | - | 5 | - | ~ |" in table([only_after])


def test_table_row():
    rows = summarize([{"ingest ingest.requests_per_s": (1415.45, HIGHER)}],
                     [{"ingest ingest.requests_per_s": (1500.0, HIGHER)}])
    assert table(rows).splitlines()[-1] == \
        "| ingest ingest.requests_per_s | higher | 1,415 | 1,500 | 1.060 / 1.060 / 1.060 | better |"


def test_versions_alternate_per_round_and_pair_within_each_benchmark():
    assert schedule(2, ["ingest", "replay"]) == [
        (0, "ingest", "before"), (0, "ingest", "after"), (0, "replay", "before"), (0, "replay", "after"),
        (1, "ingest", "after"), (1, "ingest", "before"), (1, "replay", "after"), (1, "replay", "before"),
    ]
    order = [version for _, _, version in schedule(4, ["ingest"])]
    assert order == ["before", "after", "after", "before"] * 2
