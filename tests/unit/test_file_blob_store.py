"""The local blob store (the embedded mode's, and the benchmarks'): whole documents or none."""

import os

import pytest

from shared.blobs import FileBlobStore


def test_a_document_is_written_whole_under_its_key_and_listed(tmp_path):
    blobs = FileBlobStore(tmp_path)
    blobs.put_json("needsdiagnosis/webcompat/web-bugs/7.json", {"label": "bug", "id": 1})
    blobs.put_json("needsdiagnosis/webcompat/web-bugs/7.json", {"label": "invalid", "id": 2})  # replaced
    assert blobs.get_json("needsdiagnosis/webcompat/web-bugs/7.json") == {"label": "invalid", "id": 2}
    assert blobs.get("needsdiagnosis/webcompat/web-bugs/8.json") is None
    assert blobs.keys() == ["needsdiagnosis/webcompat/web-bugs/7.json"]
    assert os.listdir(tmp_path / "needsdiagnosis/webcompat/web-bugs") == ["7.json"]  # no temporary left


def test_an_interrupted_write_is_never_a_key(tmp_path, monkeypatch):
    blobs = FileBlobStore(tmp_path)
    blobs.put("a.json", b"{}")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        blobs.put("b.json", b"{}")
    assert sorted(os.listdir(tmp_path)) == ["a.json"]  # and no leftover
    (tmp_path / ".tmp-123-4-5").write_bytes(b"{")  # a crash's leftover is not listed
    assert blobs.keys() == ["a.json"]


@pytest.mark.parametrize("key", ["/etc/passwd", "a/../../b", "a//b", "./a"])
def test_keys_outside_the_store_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="blob key escapes the store"):
        FileBlobStore(tmp_path).put(key, b"{}")
