"""Text cleanup: what the models read."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.predictor.tasks import get_task
from services.predictor.tasks.text import (
    MAX_RAW_BODY_CHARS,
    clean,
    collapse_spaces,
    drop_comments,
    title_and_body,
)
from shared.messages import IssueSnapshot


def test_markup_comments_and_urls_are_dropped():
    body = ("<!-- @browser: Firefox -->\n**URL**: https://example.com/a/b?c=d\n\n\n"
            "![shot](https://i.imgur.com/x.png)  <details>\tsteps\r\n</details>")
    assert clean(body) == "**URL**: example.com\n steps"
    assert title_and_body(" Title ", body) == "Title\n**URL**: example.com\n steps"
    assert clean(None) == ""


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \t\r\f\v\n\u3000\x85éa<!->", max_size=40) | st.text(max_size=200))
def test_collapsed_spaces_are_what_the_regex_gave(text):
    """The models were trained on this regex's output: the faster collapse must match it exactly."""
    assert collapse_spaces(text) == re.sub(r"[ \t\r\f\v]+", " ", text)


def test_a_long_run_collapses_to_one_space():
    assert collapse_spaces("a" + " \t" * 1000 + "\vb") == "a b"


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=" \t\r\n\x0b\x0c\x85\u2028\u3000ab<>!-[]()h", max_size=120),
       st.integers(min_value=0, max_value=40))
def test_a_limited_clean_is_the_start_of_the_whole(text, limit):
    """Only the start of a long body is read (MAX_BODY_CHARS): cleaning just its head must give the
    same characters as cleaning all of it."""
    assert clean(text, limit) == clean(text)[:limit]


def test_a_long_body_is_cleaned_from_its_head():
    body = ("word  \t" * 400) + "<!-- " + "x" * 10 + " -->"
    assert clean(body, 50) == clean(body)[:50] == ("word " * 10)[:50]


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="<!->a\n", max_size=60))
def test_comments_are_dropped_as_the_regex_dropped_them(text):
    """The models were trained on this regex's output; the one-pass version must match it exactly."""
    assert drop_comments(text) == re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)


@pytest.mark.parametrize("task", ["issuetype", "needsdiagnosis"])
def test_a_task_reads_a_bounded_start_of_title_and_body(task):
    """What a model reads is bounded whatever GitHub (or a hostile sender) puts in an issue: a title
    past GitHub's 256 characters and a body past the raw bound add nothing to it."""
    body = ("report text " * 1000)[:MAX_RAW_BODY_CHARS]
    base = IssueSnapshot("o/r", 1, "", "t" * 256, body, None)
    longer = IssueSnapshot("o/r", 1, "", "t" * 100_000, body + "<!--" * 25_000, None)
    assert get_task(task).text(longer) == get_task(task).text(base)
