"""The content-keyed cache behind the heavy model's embeddings and the tuned model's lower layers."""

import numpy as np

from services.predictor.array_cache import ArrayCache


def counting(calls):
    def compute(texts):
        calls.append(list(texts))
        return [np.full(2, len(t), np.float32) for t in texts]
    return compute


def test_each_missing_text_is_computed_once_and_answers_keep_their_order(monkeypatch):
    monkeypatch.delenv("WCML_EMBEDDING_CACHE", raising=False)
    cache, calls = ArrayCache("t", keep=10), []
    out = cache.get(["a", "b", "a"], ["x", "yy", "x"], counting(calls))
    assert calls == [["x", "yy"]]
    assert [a[0] for a in out] == [1, 2, 1]
    assert [a[0] for a in cache.get(["b", "a"], ["yy", "x"], counting(calls))] == [2, 1]
    assert len(calls) == 1


def test_memory_keeps_only_the_most_recent(monkeypatch):
    monkeypatch.delenv("WCML_EMBEDDING_CACHE", raising=False)
    cache, calls = ArrayCache("t", keep=2), []
    cache.get(["a", "b", "c"], ["1", "2", "3"], counting(calls))
    cache.get(["c"], ["3"], counting(calls))
    assert len(calls) == 1  # still held
    cache.get(["a"], ["1"], counting(calls))
    assert calls[-1] == ["1"]  # dropped: the oldest beyond two


def test_disk_outlives_the_process_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("WCML_EMBEDDING_CACHE", str(tmp_path))
    calls = []
    ArrayCache("sub", keep=1).get(["ab12"], ["text"], counting(calls))
    assert (tmp_path / "sub" / "ab" / "ab12.npy").is_file()
    again = ArrayCache("sub", keep=1).get(["ab12"], ["text"], counting(calls))
    assert len(calls) == 1 and again[0][0] == 4
