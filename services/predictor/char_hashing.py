"""Hashed character n-grams (``analyzer="char_wb"``) for a whole batch in a few numpy operations.

scikit-learn's ``HashingVectorizer`` builds every n-gram of every word as a Python string (a loop in
``_char_wb_ngrams``) and hashes them one by one: most of a light model's predict time
(docs/benchmarks.md). Here the batch is one array of code points, a window of n code points is an
n-gram, and MurmurHash3 (the hash scikit-learn uses, seed 0) runs over all windows at once. The
matrix is the same, entry for entry (tests/unit/test_hashing.py compares them on real issues),
so a bundle trained with scikit-learn's vectorizer scores the same; ``hashing.FastHashing`` is only
ever put in place at load time, never saved.

Where it is the same: the padded words of ``char_wb`` (`` word ``) are runs between double spaces
in ``" " + "  ".join(words) + " "``, documents one after another; a window of n code points inside
one such run is exactly one of scikit-learn's n-grams when the smallest n is at most 3 (every padded
word is at least 3 long, so its short-word rule never applies). Windows of 1 to 4 ASCII code points
are hashed as up to 4 little-endian bytes in numpy; a window with any other character goes through
``murmurhash3_32`` on its UTF-8 bytes, as scikit-learn does.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
MAX_N = 4  # one MurmurHash3 block (4 bytes) at most: n-grams of ASCII characters up to 4 long


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def murmur3_short(keys: np.ndarray, length: int) -> np.ndarray:
    """MurmurHash3 x86_32, seed 0, of keys of ``length`` (1-4) bytes packed little-endian in uint32;
    signed, as ``murmurhash3_32(..., positive=False)``."""
    with np.errstate(over="ignore"):
        k = _rotl(keys * _C1, 15) * _C2
        if length == 4:  # one whole block
            h = _rotl(k, 13) * np.uint32(5) + np.uint32(0xE6546B64)
        else:  # the tail only
            h = k
    return finalise(h, np.uint32(length))


def finalise(h: np.ndarray, length) -> np.ndarray:
    """MurmurHash3's last steps on the running hashes ``h`` (uint32, changed in place): the key's
    length in bytes mixed in, then fmix32; signed, as scikit-learn's."""
    with np.errstate(over="ignore"):
        h ^= length
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return h.view(np.int32)


def supported(vectorizer: HashingVectorizer) -> bool:
    """Whether ``char_wb_matrix`` gives this vectorizer's matrix: its default text handling, char_wb
    n-grams from at most 3 to at most 4."""
    low, high = vectorizer.ngram_range
    return (vectorizer.analyzer == "char_wb" and 1 <= low <= 3 and low <= high <= MAX_N
            and vectorizer.input == "content" and vectorizer.preprocessor is None
            and vectorizer.strip_accents is None and vectorizer.decode_error == "strict"
            and vectorizer.dtype in (np.float32, np.float64))


def char_wb_matrix(texts: Iterable[str], n_features: int, ngram_range: tuple[int, int], lowercase: bool,
                   alternate_sign: bool, dtype) -> sp.csr_matrix:
    """The counts ``HashingVectorizer(analyzer="char_wb", norm=None)`` gives, before ``binary``."""
    words = [(t.lower() if lowercase else t).split() for t in texts]
    runs = [" " + "  ".join(w) + " " if w else "" for w in words]  # no words: no n-grams, not even " "
    starts = np.cumsum([0] + [len(r) for r in runs[:-1]])
    joined = "".join(runs)
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    # a double space ends a padded word; a window holding one crosses two words (or two documents)
    space = points == 32
    ends = np.concatenate(([0], np.cumsum(space[:-1] & space[1:])))
    other = np.concatenate(([0], np.cumsum(points >= 128)))
    rows, cols, signs = [], [], []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        count = len(points) - n + 1
        if count <= 0:
            continue
        inside = (ends[n - 1:n - 1 + count] - ends[:count]) == 0
        ascii_ = (other[n:n + count] - other[:count]) == 0
        at = np.flatnonzero(inside & ascii_)
        keys = np.zeros(len(at), dtype=np.uint32)
        for i in range(n):
            keys |= points[at + i] << np.uint32(8 * i)
        hashes = [murmur3_short(keys, n)]
        wide = np.flatnonzero(inside & ~ascii_)
        if len(wide):
            hashes.append(np.array([murmurhash3_32(joined[s:s + n], seed=0) for s in wide.tolist()],
                                   dtype=np.int32))
            at = np.concatenate((at, wide))
        h = np.concatenate(hashes).astype(np.int64)
        rows.append(np.searchsorted(starts, at, side="right") - 1)
        cols.append(np.abs(h) % n_features)
        signs.append(np.where(h >= 0, 1, -1) if alternate_sign else np.ones(len(h), dtype=np.int8))
    shape = (len(runs), n_features)
    if not rows:
        return sp.csr_matrix(shape, dtype=dtype)
    values = np.concatenate(signs).astype(dtype)
    matrix = sp.coo_matrix((values, (np.concatenate(rows), np.concatenate(cols))), shape=shape).tocsr()
    matrix.sum_duplicates()  # sorted indices; +1 and -1 summed to an explicit 0 stay, as in scikit-learn's
    return matrix
