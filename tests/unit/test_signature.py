from services.ingest.signature import sign, verify

# GitHub's published test vector (docs: "Validating webhook deliveries").
SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_test_vector_verifies():
    assert sign(SECRET, BODY) == HEADER
    assert verify([SECRET], BODY, HEADER)


def test_any_current_secret_may_sign_during_rotation():
    assert verify(["new-secret", SECRET], BODY, HEADER)
    assert not verify(["new-secret"], BODY, HEADER)


def test_prefix_is_removed_as_a_prefix_not_as_characters():
    # The original handler's lstrip("sha1=") would strip leading hex digits too.
    assert not verify([SECRET], BODY, HEADER.replace("sha256=", "sha1="))
    assert not verify([SECRET], BODY, HEADER[len("sha256="):])
    assert not verify([SECRET], BODY, "sha256=" + HEADER)


def test_missing_or_tampered_signature_fails():
    assert not verify([SECRET], BODY, None)
    assert not verify([SECRET], BODY, "")
    assert not verify([SECRET], BODY + b" ", HEADER)
    assert not verify([], BODY, HEADER)
