"""Hashing vectorizers that compute scikit-learn's matrix in numpy, swapped in when a bundle loads.

``char_hashing.py`` (char_wb n-grams) and ``word_hashing.py`` (word n-grams) say how, and the tests
say that the matrix is scikit-learn's, entry for entry: a bundle trained with scikit-learn's
``HashingVectorizer`` scores the same. ``FastHashing`` never reaches a saved bundle.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from services.predictor.char_hashing import char_wb_matrix, supported
from services.predictor.estimators import parts
from services.predictor.word_hashing import tokens_of, word_matrix, word_supported

# From how many texts numpy is faster than scikit-learn's loops (docs/benchmarks.md).
CHAR_BATCH = 4
WORD_BATCH = 32


class FastHashing(HashingVectorizer):
    """A ``HashingVectorizer`` whose char_wb transform is ``char_wb_matrix`` and whose word transform
    is ``word_hashing.word_matrix``; any other settings go to scikit-learn's own. Put in place by
    ``accelerate``, at load time only."""

    def transform(self, X):
        if isinstance(X, str):
            return super().transform(X)
        X = X if isinstance(X, list) else list(X)
        if supported(self) and len(X) >= CHAR_BATCH:
            X = char_wb_matrix(X, self.n_features, self.ngram_range, self.lowercase, self.alternate_sign,
                               self.dtype)
        elif word_supported(self) and len(X) >= WORD_BATCH:
            X = word_matrix(tokens_of(self, X), self.n_features, self.ngram_range, self.alternate_sign,
                            self.dtype)
        else:  # a small batch (numpy's fixed costs would outweigh the per-text loops), or not ours
            return super().transform(X)
        if self.binary:
            X.data.fill(1)
        if self.norm is not None:
            X = normalize(X, norm=self.norm, copy=False)
        return X


def accelerate(estimator) -> int:
    """Swap each supported char_wb or word ``HashingVectorizer`` inside ``estimator`` (``parts``) for
    ``FastHashing``, in place; return how many."""
    swapped = 0
    for part in parts(estimator):
        if type(part) is HashingVectorizer and (supported(part) or word_supported(part)):
            part.__class__ = FastHashing
            swapped += 1
    return swapped
