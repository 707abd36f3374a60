"""Load-time changes to a fitted model: column-major weights (no copy of the weights per call) and
direct-call pipelines and unions (none of scikit-learn's per-call machinery); the same probabilities,
bit for bit."""

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from services.predictor.estimators import (
    DirectPipeline,
    DirectUnion,
    coefficients_by_column,
    direct_calls,
    parts,
)

TEXTS = ["page does not load", "add a dark mode", "how do I log in", "layout broken on mobile",
         "feature: export to csv", "why is this slow?"] * 5
LABELS = ["bug", "feature", "question", "bug", "feature", "question"] * 5


def model():
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 4), n_features=2**12)
    union = FeatureUnion([("words", HashingVectorizer(n_features=2**12)), ("chars", chars)])
    return make_pipeline(union, LogisticRegression(max_iter=200)).fit(TEXTS, LABELS)


def test_parts_reach_every_estimator_of_a_pipeline_of_unions():
    fitted = model()
    kinds = [type(p).__name__ for p in parts({"model": [fitted]})]
    assert kinds == ["Pipeline", "FeatureUnion", "HashingVectorizer", "HashingVectorizer",
                     "LogisticRegression"]


def test_column_major_weights_score_exactly_the_same_and_are_read_in_place():
    fitted = model()
    before = fitted.predict_proba(TEXTS)
    assert not fitted[-1].coef_.T.flags.c_contiguous  # as fitted: scipy would copy the transpose
    assert coefficients_by_column(fitted) == 1
    assert fitted[-1].coef_.T.flags.c_contiguous
    assert np.array_equal(fitted.predict_proba(TEXTS), before)
    assert coefficients_by_column(fitted) == 0  # nothing left to change


def test_a_binary_model_has_nothing_to_change():
    binary = make_pipeline(HashingVectorizer(n_features=2**10), LogisticRegression()).fit(
        TEXTS, ["bug" if label == "bug" else "other" for label in LABELS])
    assert coefficients_by_column(binary) == 0  # one row: both layouts at once


def test_direct_calls_score_exactly_the_same():
    fitted = model()
    before, features = fitted.predict_proba(TEXTS), fitted[:-1].transform(TEXTS)
    assert direct_calls(fitted) == 2  # the pipeline and its union
    assert type(fitted) is DirectPipeline and type(fitted[0]) is DirectUnion
    assert np.array_equal(fitted.predict_proba(TEXTS), before)
    assert np.array_equal(fitted.predict_proba(TEXTS[:1]), before[:1])  # one issue, as live
    assert (fitted[:-1].transform(TEXTS) != features).nnz == 0
    assert direct_calls(fitted) == 0  # nothing left to swap


def test_a_direct_union_weights_drops_and_passes_through_as_scikit_learn_does():
    X = np.arange(12, dtype=float).reshape(4, 3)
    union = FeatureUnion([("double", FunctionTransformer(lambda x: 2 * x)), ("gone", "drop"),
                          ("same", "passthrough")], transformer_weights={"double": 0.5, "same": 3.0})
    expected = union.fit(X).transform(X)
    assert direct_calls(union) == 1
    assert np.array_equal(union.transform(X), expected)
    assert direct_calls(FeatureUnion([("all", "drop")]).fit(X)) == 1  # every part dropped: no columns
    parallel = FeatureUnion([("same", "passthrough")], n_jobs=2).fit(X)
    direct_calls(parallel)
    assert np.array_equal(parallel.transform(X), X)  # asked for jobs: scikit-learn's own path


def test_a_direct_pipeline_offers_what_its_final_step_offers():
    X = np.arange(6, dtype=float).reshape(3, 2)
    transformer = Pipeline([("scale", FunctionTransformer(lambda x: x / 2))]).fit(X)
    direct_calls(transformer)
    assert np.array_equal(transformer.transform(X), X / 2)
    assert not hasattr(transformer, "predict_proba")
    classifier = model()
    direct_calls(classifier)
    assert not hasattr(classifier, "transform")  # LogisticRegression does not transform


def test_a_model_given_an_output_setting_keeps_scikit_learns_classes():
    X = np.arange(6, dtype=float).reshape(3, 2)  # (pandas is not installed: "default" stands in)
    union = FeatureUnion([("same", "passthrough")]).set_output(transform="default")
    union.fit(X)
    assert direct_calls(union) == 0 and type(union) is FeatureUnion
