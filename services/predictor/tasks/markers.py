"""Features that mean the same in every repository: how an issue is written, not which words it uses.

A repository's vocabulary (its API names, its components) tells a model little about another
repository's issues; the shape of a report does: an issue template's headings, a code block, a stack
trace, version lines, a question in the title, a feature request's phrasing. ``Markers`` turns a task's
text (title line, then the cleaned body) into a few such indicators, scaled by ``weight`` against the
TF-IDF features beside them. Stateless; only numpy types, so a bundle holding it loads through the
allow-list.
"""

from __future__ import annotations

import re

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

_I = re.IGNORECASE | re.MULTILINE
# (name, pattern, where: "title" | "body" | "all")
MARKERS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("title_question_mark", re.compile(r"\?\s*$"), "title"),
    ("title_question_word", re.compile(r"^\s*(how|what|why|where|when|which|who|is|are|can|could|does|do|"
                                       r"should|would|will)\b", re.I), "title"),
    ("title_how_to", re.compile(r"\b(how (to|do|can|should)|is (it|there) (a way|possible))\b", re.I),
     "title"),
    ("title_feature", re.compile(r"\b(feature request|add(ing)? support|support for|allow|option to|"
                                 r"ability to|proposal|request|suggestion|enhancement|\[feature\]|"
                                 r"feat\b|improve)", re.I), "title"),
    ("title_bug", re.compile(r"\b(bug|crash(es|ed)?|error|fail(s|ed|ure)?|broken|exception|not working|"
                             r"doesn'?t work|does not work|regression|wrong|incorrect|issue with|"
                             r"unable|cannot|can'?t)\b", re.I), "title"),
    ("code_block", re.compile(r"```"), "body"),
    ("stack_trace", re.compile(r"(Traceback \(most recent call last\)|^\s*at [\w$.<>]+ ?\(|"
                               r"\b\w+(Error|Exception)\b:|\.(py|js|ts|cpp|cc|h|java):\d+|"
                               r"Segmentation fault|core dumped|panic:)", _I), "body"),
    ("repro_steps", re.compile(r"(steps to reproduce|to reproduce|repro(duction)? steps|minimal "
                               r"(reproducible )?example|reproduc(e|ible))", _I), "body"),
    ("expected_actual", re.compile(r"(expected (behaviou?r|result|output)|actual (behaviou?r|result|"
                                   r"output)|current behaviou?r|what (happened|did you expect))", _I),
     "body"),
    ("versions", re.compile(r"(\bversion\b|\bv?\d+\.\d+(\.\d+)?\b|\bOS\b|operating system|platform|"
                            r"browser|node(\.js)? ?v?\d|python ?\d)", _I), "body"),
    ("feature_template", re.compile(r"(is your feature request related|describe the solution|"
                                    r"describe alternatives|feature request|motivation|proposal|"
                                    r"use case|would (be|love|like)|it would be (nice|great|useful)|"
                                    r"nice to have|please add|add (an? )?(option|support|way))", _I), "body"),
    ("question_body", re.compile(r"(\bhow (do|can|should|to)\b|\bis (it|there) (possible|a way)\b|"
                                 r"\bany (idea|help|suggestion)s?\b|\bi('m| am) (new|trying|wondering)\b|"
                                 r"\bcould (someone|anyone|you)\b|\bwhat is the (best|right|correct)\b|"
                                 r"\bstack ?overflow\b)", _I), "body"),
    ("body_question_marks", re.compile(r"\?(\s|$)"), "body"),
    ("checklist", re.compile(r"^\s*[-*] \[[ xX]\]", re.MULTILINE), "body"),
    ("headings", re.compile(r"^\s*(#{1,6} |\*\*[^*\n]{3,40}\*\*\s*:?\s*$)", re.MULTILINE), "body"),
)


class Markers(TransformerMixin, BaseEstimator):
    """Texts -> one column per marker in ``MARKERS`` (present or not; counted ones on a log scale),
    plus the body's length on a log scale, all times ``weight``."""

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def fit(self, X, y=None) -> Markers:
        return self

    def transform(self, X) -> np.ndarray:
        out = np.zeros((len(X), len(MARKERS) + 1), dtype=np.float32)
        for row, text in enumerate(X):
            title, _, body = str(text).partition("\n")
            for col, (_name, pattern, where) in enumerate(MARKERS):
                part = title if where == "title" else body if where == "body" else text
                hits = len(pattern.findall(part))
                out[row, col] = np.log1p(hits) / np.log(4) if hits else 0.0
            out[row, -1] = np.log1p(len(body)) / np.log1p(500)
        return np.minimum(out, 1.5) * np.float32(self.weight)
