"""Hashed word n-grams (``analyzer="word"``) for a whole batch in a few numpy operations.

scikit-learn's ``HashingVectorizer`` joins every n-gram of a document into a Python string
(``_word_ngrams``), encodes each to UTF-8 and hashes it in a loop: after the char n-grams
(``char_hashing.py``), the largest part of a light model's predict time. Here each document's tokens
(found by the vectorizer's own tokenizer) are joined by single spaces, so the n-gram of n tokens
starting at token k is one span of that text, from token k's start to token k+n-1's end: exactly
``" ".join(tokens[k:k+n])``. MurmurHash3 (scikit-learn's, seed 0) then runs over all spans at once, a
4-byte block at a time. The matrix is the same, entry for entry (tests/unit/test_hashing.py
compares them on real issues); like the char hashing, put in place at load time only (``hashing.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from services.predictor.char_hashing import _C1, _C2, _rotl, finalise

DEFAULT_TOKENS = r"(?u)\b\w\w+\b"  # scikit-learn's token pattern: runs of 2 or more word characters
# An ASCII document's word characters kept, every other byte a space: its default tokens are then the
# runs ``bytes.split`` finds that are 2 or more long (``\w`` is ``[A-Za-z0-9_]`` on ASCII text).
_ASCII_WORDS = bytes(c if c < 128 and (chr(c).isalnum() or c == ord("_")) else ord(" ") for c in range(256))


def tokens_of(vectorizer: HashingVectorizer, documents) -> list[list[bytes]]:
    """Each document's tokens, as the vectorizer's analyzer finds them, in UTF-8."""
    preprocess, tokenize = vectorizer.build_preprocessor(), vectorizer.build_tokenizer()
    fast = vectorizer.token_pattern == DEFAULT_TOKENS
    out = []
    for doc in documents:
        doc = preprocess(doc)
        if fast and doc.isascii():  # a third of the regex's time
            out.append([w for w in doc.encode("ascii").translate(_ASCII_WORDS).split() if len(w) > 1])
        else:
            out.append([token.encode("utf-8") for token in tokenize(doc)])
    return out


def word_supported(vectorizer: HashingVectorizer) -> bool:
    """Whether ``word_matrix`` gives this vectorizer's matrix: word n-grams from its own token
    pattern, with scikit-learn's default preprocessing and no stop words."""
    low, high = vectorizer.ngram_range
    return (vectorizer.analyzer == "word" and 1 <= low <= high and vectorizer.tokenizer is None
            and vectorizer.stop_words is None and vectorizer.input == "content"
            and vectorizer.preprocessor is None and vectorizer.strip_accents is None
            and vectorizer.decode_error == "strict" and vectorizer.dtype in (np.float32, np.float64))


def murmur3_spans(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """MurmurHash3 x86_32, seed 0, of the byte spans ``data[s:s + n]`` for each start and length;
    signed, as ``murmurhash3_32(..., positive=False)``. ``data`` (uint8) has 3 bytes of padding
    after its last span."""
    data = data.astype(np.uint32)
    blocks = lengths // 4
    h = np.zeros(len(starts), dtype=np.uint32)
    with np.errstate(over="ignore"):
        for j in range(int(blocks.max(initial=0))):  # block j of every span that has one
            at = np.flatnonzero(blocks > j)
            o = starts[at] + 4 * j
            k = data[o] | (data[o + 1] << np.uint32(8)) | (data[o + 2] << np.uint32(16)) \
                | (data[o + 3] << np.uint32(24))
            k = _rotl(k * _C1, 15) * _C2
            h[at] = _rotl(h[at] ^ k, 13) * np.uint32(5) + np.uint32(0xE6546B64)
        tail = lengths & 3
        o = starts + 4 * blocks
        k = np.zeros(len(starts), dtype=np.uint32)
        for i in range(3):  # the 1-3 bytes after the last whole block
            k |= np.where(tail > i, data[o + i] << np.uint32(8 * i), np.uint32(0))
        h ^= np.where(tail > 0, _rotl(k * _C1, 15) * _C2, np.uint32(0))
    return finalise(h, lengths.astype(np.uint32))


def word_matrix(tokens: Sequence[list[bytes]], n_features: int, ngram_range: tuple[int, int],
                alternate_sign: bool, dtype) -> sp.csr_matrix:
    """The counts ``HashingVectorizer(analyzer="word", norm=None)`` gives for documents' tokens
    (``tokens_of``), before ``binary``."""
    shape = (len(tokens), n_features)
    counts = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    total = int(counts.sum())
    if total == 0:
        return sp.csr_matrix(shape, dtype=dtype)
    flat = list(chain.from_iterable(tokens))
    sizes = np.fromiter(map(len, flat), dtype=np.int64, count=total)
    starts = np.concatenate(([0], np.cumsum(sizes[:-1] + 1)))  # after the tokens before and their spaces
    ends = starts + sizes
    data = np.frombuffer(b" ".join(flat) + b"\0\0\0", dtype=np.uint8)
    doc = np.repeat(np.arange(len(tokens)), counts)
    last = np.repeat(np.cumsum(counts) - 1, counts)  # each token's document's last token
    rows, spans, lengths = [], [], []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        first = np.flatnonzero(np.arange(total) + (n - 1) <= last)  # n-grams within one document
        rows.append(doc[first])
        spans.append(starts[first])
        lengths.append(ends[first + n - 1] - starts[first])
    h = murmur3_spans(data, np.concatenate(spans), np.concatenate(lengths)).astype(np.int64)
    values = (np.where(h >= 0, 1, -1) if alternate_sign else np.ones(len(h), dtype=np.int8)).astype(dtype)
    matrix = sp.coo_matrix((values, (np.concatenate(rows), np.abs(h) % n_features)), shape=shape).tocsr()
    matrix.sum_duplicates()  # sorted indices; +1 and -1 summed to an explicit 0 stay, as in scikit-learn's
    return matrix
