"""Text cleanup shared by all tasks: what a classifier should not have to learn to ignore."""

from __future__ import annotations

import re

# Bounds prediction cost: the start of a report carries the signal, and char n-grams over a long body
# cost throughput (what longer bodies score: docs/predictor.md).
MAX_BODY_CHARS = 500

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_URL = re.compile(r"https?://([^/\s)<>\]\"']+)[^\s)<>\]\"']*")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def clean(text: str | None) -> str:
    """Drop comments, images and markup; keep a URL's host (the site matters, the path rarely)."""
    text = _HTML_COMMENT.sub(" ", text or "")
    text = _MD_IMAGE.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _URL.sub(lambda m: m.group(1), text)
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()


def title_and_body(title: str | None, body: str | None) -> str:
    return f"{(title or '').strip()}\n{clean(body)[:MAX_BODY_CHARS]}"
