"""Text cleanup shared by all tasks: what a classifier should not have to learn to ignore."""

from __future__ import annotations

import re

# Bounds prediction cost: the start of a report carries the signal, and char n-grams over a long body
# cost throughput (what longer bodies score: docs/predictor.md).
MAX_BODY_CHARS = 500
# GitHub's own limit on an issue's title: a real title is never cut; a longer one (no GitHub issue has
# one: hostile input) costs no more than a real one.
MAX_TITLE_CHARS = 256
# The start of a body every cleanup reads: its first 500 characters, cleaned, come from the first few
# hundred raw ones in practice (a report template's comment and fields included). The cleanups' regexes
# are quadratic on some inputs ("<!--" repeated), so what they read is bounded, identically in
# training and serving (docs/predictor.md gives the worst cases, bounded and not).
MAX_RAW_BODY_CHARS = 8 * MAX_BODY_CHARS

_URL = re.compile(r"https?://([^/\s)<>\]\"']+)[^\s)<>\]\"']*")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_OTHER_SPACES = "\t\r\f\v"  # with " ", what a run collapses: not newlines
_BLANK_LINES = re.compile(r"\n\s*\n+")


def clean(text: str | None, limit: int | None = None) -> str:
    """Drop comments, images and markup; keep a URL's host (the site matters, the path rarely).
    ``limit``: the result's first ``limit`` characters are all that is wanted."""
    text = drop_comments(text or "")
    text = _MD_IMAGE.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _URL.sub(lambda m: m.group(1), text)
    if limit is not None and len(text) > 2 * limit:
        # Whitespace is squeezed run by run, each run of whitespace by what it holds alone, so the
        # squeezed head of the text, stripped, is the start of the whole text squeezed and stripped:
        # long enough, it is the answer (most bodies are several times the limit).
        head = _squeezed(text[:2 * limit]).strip()
        if len(head) >= limit:
            return head[:limit]
    text = _squeezed(text).strip()
    return text if limit is None else text[:limit]


def drop_comments(text: str) -> str:
    """Each HTML comment as one space: what ``re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)`` gives,
    in one pass (the regex looks for an end from every ``<!--`` that has none: quadratic)."""
    out, at = [], 0
    while (start := text.find("<!--", at)) != -1 and (end := text.find("-->", start + 4)) != -1:
        out += (text[at:start], " ")
        at = end + 3
    return "".join(out) + text[at:] if out else text


def _squeezed(text: str) -> str:
    return _BLANK_LINES.sub("\n", collapse_spaces(text))


def collapse_spaces(text: str) -> str:
    """Each run of spaces, tabs, ``\\r``, ``\\f`` and ``\\v`` as one space: what
    ``re.sub(r"[ \\t\\r\\f\\v]+", " ", text)`` gives, in a quarter of its time (that regex replaced
    every single space between words with itself: a third of the light model's time per issue)."""
    for other in _OTHER_SPACES:
        if other in text:
            text = text.replace(other, " ")
    while "  " in text:  # each pass halves every run
        text = text.replace("  ", " ")
    return text


def head(body: str | None) -> str:
    """The part of a body a task's text is made from (``MAX_RAW_BODY_CHARS``)."""
    return (body or "")[:MAX_RAW_BODY_CHARS]


def title_and_body(title: str | None, body: str | None) -> str:
    return f"{(title or '').strip()[:MAX_TITLE_CHARS]}\n{clean(head(body), MAX_BODY_CHARS)}"
