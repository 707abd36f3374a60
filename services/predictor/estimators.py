"""The parts of a fitted model, and the load-time layout change that makes its linear models cheap.

A bundle's model is a tree: pipelines, unions, routers, each holding estimators in attributes, lists,
tuples and dicts. ``parts`` walks it; ``coefficients_by_column`` is applied at load time, never saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator


def parts(estimator: Any) -> Iterator[BaseEstimator]:
    """Every estimator inside ``estimator`` (itself first), depth first."""
    if isinstance(estimator, (list, tuple)):
        for part in estimator:
            yield from parts(part)
    elif isinstance(estimator, dict):
        for part in estimator.values():
            yield from parts(part)
    elif isinstance(estimator, BaseEstimator):  # nothing else holds estimators (not an encoder's model)
        yield estimator
        for part in vars(estimator).values():
            yield from parts(part)


def coefficients_by_column(estimator: Any) -> int:
    """Store each linear model's ``coef_`` column-major, in place; return how many were changed.

    ``decision_function`` multiplies the sparse features by ``coef_.T``. Row-major, that transpose is
    not contiguous, and scipy copies it whole on every call (``other.ravel()`` in
    ``_matmul_multivector``): 3 classes x 2^19 hashed features, 9 MB, for a batch of one issue, which
    was 40 % of a single issue's predict time (docs/benchmarks.md). Column-major, the transpose is the
    same memory read in place: the same numbers, added in the same order.
    """
    changed = 0
    for part in parts(estimator):
        coef = getattr(part, "coef_", None)
        if isinstance(coef, np.ndarray) and coef.ndim == 2 and not coef.T.flags.c_contiguous:
            part.coef_ = np.asfortranarray(coef)
            changed += 1
    return changed
