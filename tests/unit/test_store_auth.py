"""API keys are kept as digests and checked without regard to which key matched."""

from __future__ import annotations

from services.api.auth import ApiKeys


def test_known_keys_pass_and_others_do_not():
    keys = ApiKeys(["alpha-key", " beta-key ", ""])
    assert len(keys) == 2
    for header in ("Bearer alpha-key", "bearer beta-key", "Bearer  beta-key "):
        assert keys.allows(header), header
    for header in (None, "", "Bearer", "Bearer ", "alpha-key", "Basic alpha-key", "Bearer alpha-keyx",
                   "Bearer ALPHA-KEY", "Token alpha-key"):
        assert not keys.allows(header), header


def test_no_plaintext_is_kept():
    keys = ApiKeys(["alpha-key-secret"])
    assert "alpha-key-secret" not in repr(vars(keys))
    assert all(isinstance(d, bytes) and len(d) == 32 for d, _scope in keys._digests)


def test_no_keys_lets_nobody_in():
    assert not ApiKeys([]).allows("Bearer ") and not ApiKeys([""]).allows("Bearer anything")
