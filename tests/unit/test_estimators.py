"""Column-major weights: the same probabilities, bit for bit, with no copy of the weights per call."""

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline

from services.predictor.estimators import coefficients_by_column, parts

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
