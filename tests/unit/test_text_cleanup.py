"""Text cleanup: what the models read. Faster rules must give the very text the models were
trained on, character for character."""

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.predictor.tasks import text
from services.predictor.tasks.text import clean, title_and_body

DATA = Path(__file__).resolve().parents[2].parent / "shared/datasets/nlbse24/issues_test.csv"
_ALL_BLANKS = re.compile(r"[ \t\r\f\v]+")  # the rule as first written: every run, a lone space too


def clean_as_trained(body: str | None) -> str:
    """``clean`` with the first spaces rule, every other step the module's own."""
    out = text._HTML_COMMENT.sub(" ", body or "")
    out = text._MD_IMAGE.sub(" ", out)
    out = text._HTML_TAG.sub(" ", out)
    out = text._URL.sub(lambda m: m.group(1), out)
    out = _ALL_BLANKS.sub(" ", out)
    return text._BLANK_LINES.sub("\n", out).strip()


def test_markup_comments_and_urls_are_dropped():
    body = ("<!-- @browser: Firefox -->\n**URL**: https://example.com/a/b?c=d\n\n\n"
            "![shot](https://i.imgur.com/x.png)  <details>\tsteps\r\n</details>")
    assert clean(body) == "**URL**: example.com\n steps"
    assert title_and_body(" Title ", body) == "Title\n**URL**: example.com\n steps"
    assert clean(None) == ""


@given(st.text(alphabet=" \t\r\n\f\va<>!-[]()/:h.ps", max_size=200))
def test_blank_runs_match_the_rule_the_models_were_trained_with(body):
    assert clean(body) == clean_as_trained(body)


@pytest.mark.skipif(not DATA.exists(), reason="needs ../shared/datasets beside the project")
def test_real_issue_bodies_clean_exactly_as_before():
    import csv

    with DATA.open(newline="", encoding="utf-8") as f:
        bodies = [row["body"] for row, _ in zip(csv.DictReader(f), range(1500), strict=False)]
    assert len(bodies) == 1500  # every issue of the test split
    assert [clean(b) for b in bodies] == [clean_as_trained(b) for b in bodies]
