"""A replay run's progress as the dashboard draws it."""

import pytest

from shared.replays import progress


@pytest.mark.parametrize("state, total, published, expected", [
    ("running", 10, 4, 0.4), ("done", 8, 8, 1.0), ("done", 0, 0, 1.0), ("running", 0, 0, 0.0),
    ("failed", 3, 1, 0.3333), ("running", 5, 7, 1.0),  # never past full, whatever the counters say
])
def test_progress(state, total, published, expected):
    assert progress(state, total, published) == expected
