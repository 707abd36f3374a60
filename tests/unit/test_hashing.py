"""The numpy char and word n-gram hashers give scikit-learn's matrix, entry for entry, on real issues."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from services.predictor.char_hashing import char_wb_matrix, murmur3_short
from services.predictor.estimators import coefficients_by_column, direct_calls
from services.predictor.hashing import WORD_BATCH, FastHashing, accelerate
from services.predictor.serving.bundle import _trusted_types, load_bundle
from services.predictor.tasks.base import text_pipeline
from services.predictor.tasks.text import title_and_body
from services.predictor.training.datasets import read_labelled
from services.predictor.training.demo import ensure_demo_bundles
from services.predictor.word_hashing import murmur3_spans, tokens_of, word_matrix

NLBSE_TEST = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "nlbse24" / "issues_test.csv"
ODD = ["", " ", "a", "ab", "abc", "a b  c", "\t\nUPPER lower\r\n", "Über café 🚀 naïve — “quoted”",
       "日本語のテキスト", "x\x1cy\x1dz\x85w\u00a0v\u2003u", "tab\tseparated\x0bvertical\x0cfeed",
       "a" * 3000, "é", "🚀🚀 🚀", "x_y a1 _ __ 9 ÀB àb ǅx", "İstanbul ﬃ STRASSE straße"]


@pytest.fixture(scope="module")
def issues() -> list[str]:
    assert NLBSE_TEST.is_file(), f"NLBSE'24 data missing: {NLBSE_TEST} (docs/predictor.md, Data sources)"
    found, _labels = read_labelled(NLBSE_TEST)
    return [title_and_body(i.title, i.body) for i in found] + ODD


def same(a, b) -> None:
    a, b = a.tocsr(), b.tocsr()
    a.sum_duplicates()
    b.sum_duplicates()
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_the_vectorised_murmurhash_is_scikit_learns(length):
    rng = np.random.default_rng(length)
    raw = rng.integers(0, 128, size=(2000, length), dtype=np.uint32)
    keys = np.zeros(len(raw), dtype=np.uint32)
    for i in range(length):
        keys |= raw[:, i] << np.uint32(8 * i)
    expected = [murmurhash3_32(bytes(row.astype(np.uint8)), seed=0) for row in raw]
    assert murmur3_short(keys, length).tolist() == expected


@pytest.mark.parametrize(("ngrams", "lowercase", "alternate_sign"),
                         [((3, 4), True, False), ((1, 3), False, True), ((2, 4), True, True),
                          ((3, 3), True, False)])
def test_the_matrix_is_scikit_learns_on_real_issues(issues, ngrams, lowercase, alternate_sign):
    reference = HashingVectorizer(analyzer="char_wb", ngram_range=ngrams, lowercase=lowercase,
                                  alternate_sign=alternate_sign, norm=None, n_features=2**18,
                                  dtype=np.float32)
    ours = char_wb_matrix(issues, 2**18, ngrams, lowercase, alternate_sign, np.float32)
    same(ours, reference.transform(issues))
    assert ours.nnz > 100 * len(issues)  # real text, not an empty matrix twice


def test_one_text_alone_and_in_a_batch_hash_the_same(issues):
    batch = char_wb_matrix(issues[:50], 2**18, (3, 4), True, False, np.float32)
    for i in (0, 17, 49):
        same(char_wb_matrix([issues[i]], 2**18, (3, 4), True, False, np.float32), batch[i])


def test_accelerate_swaps_only_what_it_matches_and_the_model_scores_the_same(issues):
    labels = ["bug", "feature", "question"] * 10
    model = text_pipeline().fit(issues[:30], labels)
    before = model.predict_proba(issues)
    assert accelerate(model) == 3  # the chars, the words and the title's words
    kinds = [type(t.named_steps["hash"]) for _name, t in model.named_steps["features"].transformer_list
             if hasattr(t, "named_steps") and "hash" in t.named_steps]
    assert kinds.count(FastHashing) == 2 and kinds.count(HashingVectorizer) == 0
    assert np.array_equal(model.predict_proba(issues), before)
    wider = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5))  # 5 code points: not ours
    stopped = HashingVectorizer(stop_words=["the"])  # stop words: not ours
    assert accelerate(wider) == accelerate(stopped) == 0 and type(wider) is type(stopped) is HashingVectorizer


def test_a_loaded_bundle_hashes_in_numpy_and_scores_as_scikit_learn_would(tmp_path):
    ensure_demo_bundles(tmp_path, ["issuetype"], announce=lambda line: None)  # the packaged starter
    bundle = load_bundle(tmp_path, "issuetype")
    data = (bundle.path / bundle.manifest["model_file"]).read_bytes()
    plain = sio.loads(data, trusted=_trusted_types(data, "starter"))  # scikit-learn's vectorizers
    snapshots, _labels = read_labelled(NLBSE_TEST)
    expected = replace(bundle, pipeline=plain).predict(snapshots)
    assert bundle.predict(snapshots) == expected
    # load_bundle had swapped them: the fitted pooled model's, and the unfitted template's beside it
    assert accelerate(bundle.pipeline) == 0 and accelerate(plain) == 6
    # and laid the fitted linear model's weights out column-major (the saved file keeps them row-major)
    assert coefficients_by_column(bundle.pipeline) == 0 and coefficients_by_column(plain) >= 1
    # and its pipelines and unions call their steps directly
    assert direct_calls(bundle.pipeline) == 0 and direct_calls(plain) >= 2


def test_the_vectorised_murmurhash_of_spans_is_scikit_learns():
    rng = np.random.default_rng(7)
    sizes = [*range(41), *rng.integers(0, 300, 60)]
    keys = [bytes(rng.integers(0, 256, size=n, dtype=np.uint8)) for n in sizes]
    data = b" ".join(keys)
    starts = np.cumsum([0] + [len(k) + 1 for k in keys[:-1]])
    hashes = murmur3_spans(np.frombuffer(data + b"\0\0\0", dtype=np.uint8), starts,
                           np.array([len(k) for k in keys]))
    assert hashes.tolist() == [murmurhash3_32(k, seed=0) for k in keys]


@pytest.mark.parametrize("settings", [
    {"ngram_range": (1, 2)}, {"ngram_range": (1, 1), "lowercase": False},
    {"ngram_range": (2, 3), "alternate_sign": True}, {"ngram_range": (1, 3), "token_pattern": r"\S+"},
    {"ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b", "binary": True, "norm": "l2"}])
def test_the_word_matrix_is_scikit_learns_on_real_issues(issues, settings):
    """Default tokens of ASCII documents are found by bytes.split, the rest by the vectorizer's own
    tokenizer: either way the matrix is scikit-learn's."""
    reference = HashingVectorizer(**{"norm": None, "n_features": 2**18, "dtype": np.float32, **settings})
    fast = HashingVectorizer(**{"norm": None, "n_features": 2**18, "dtype": np.float32, **settings})
    assert accelerate(fast) == 1
    same(fast.transform(issues), reference.transform(issues))
    raw = HashingVectorizer(**{**reference.get_params(), "norm": None, "binary": False})
    for text in [issues[0]] + ODD:  # each odd text alone as well (its own first and last token)
        same(word_matrix(tokens_of(raw, [text]), 2**18, raw.ngram_range, raw.alternate_sign, np.float32),
             raw.transform([text]))
    assert len(issues) >= WORD_BATCH  # the batch above went through numpy
    with pytest.raises(Exception) as refused:  # an empty batch: scikit-learn's own answer
        reference.transform([])
    with pytest.raises(type(refused.value)):
        fast.transform([])


def test_default_tokens_are_the_regexs():
    plain = HashingVectorizer()
    for text in ODD + ["a_b c-d e.f g1 1g __init__ x\ty\nz"]:
        expected = [t.encode() for t in plain.build_tokenizer()(text.lower())]
        assert tokens_of(plain, [text]) == [expected]
    assert word_matrix([[], []], 16, (1, 2), False, np.float32).shape == (2, 16)
