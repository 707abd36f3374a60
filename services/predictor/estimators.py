"""The parts of a fitted model, and the load-time changes that make it cheap to call.

A bundle's model is a tree: pipelines, unions, routers, each holding estimators in attributes, lists,
tuples and dicts. ``parts`` walks it; ``coefficients_by_column`` and ``direct_calls`` are applied at
load time, never saved, and change no number a model returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.metaestimators import available_if


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
    ``_matmul_multivector``): 3 classes x 2^19 hashed features, 9 MB, for a batch of one issue
    (docs/benchmarks.md). Column-major, the transpose is the
    same memory read in place: the same numbers, added in the same order.
    """
    changed = 0
    for part in parts(estimator):
        coef = getattr(part, "coef_", None)
        if isinstance(coef, np.ndarray) and coef.ndim == 2 and not coef.T.flags.c_contiguous:
            part.coef_ = np.asfortranarray(coef)
            changed += 1
    return changed


class DirectPipeline(Pipeline):
    """A fitted ``Pipeline`` whose ``transform`` and ``predict_proba`` call its steps in turn and
    nothing else. scikit-learn's own also check that the pipeline is fitted (its steps' tags, walked
    on every call) and route metadata: with the union's ``Parallel`` below, half of a single issue's
    predict time. Put in place by ``direct_calls``, at load time only; keyword parameters (metadata
    routing) go to scikit-learn's."""

    @available_if(lambda self: self._can_transform())
    def transform(self, X, **params):
        if params:
            return super().transform(X, **params)
        for _, _, step in self._iter():
            X = step.transform(X)
        return X

    @available_if(lambda self: hasattr(self._final_estimator, "predict_proba"))
    def predict_proba(self, X, **params):
        if params:
            return super().predict_proba(X, **params)
        for _, _, step in self._iter(with_final=False):
            X = step.transform(X)
        return self.steps[-1][1].predict_proba(X)


class DirectUnion(FeatureUnion, auto_wrap_output_keys=None):
    """A fitted ``FeatureUnion`` whose ``transform`` calls its transformers one after the other and
    stacks their weighted outputs as scikit-learn's does, without a ``Parallel`` of one job (a copy of
    the configuration and the warning filters per transformer per call). Put in place by
    ``direct_calls``; one asked to run in parallel, or given parameters, keeps scikit-learn's."""

    def transform(self, X, **params):
        if params or self.n_jobs not in (None, 1):
            return super().transform(X, **params)
        Xs = []
        for _, trans, weight in self._iter():
            out = trans.transform(X)
            Xs.append(out if weight is None else out * weight)
        if not Xs:
            return np.zeros((X.shape[0], 0))
        return self._hstack(Xs)


def direct_calls(estimator: Any) -> int:
    """Swap each plain ``Pipeline`` and ``FeatureUnion`` inside ``estimator`` for its direct-call form,
    in place; return how many. One given an output setting (pandas or polars frames) keeps
    scikit-learn's class."""
    swapped = 0
    for part in parts(estimator):
        if getattr(part, "_sklearn_output_config", None):
            continue
        if type(part) is Pipeline:
            part.__class__ = DirectPipeline
            swapped += 1
        elif type(part) is FeatureUnion:
            part.__class__ = DirectUnion
            swapped += 1
    return swapped
