"""Text cleanup: what the models read."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from services.predictor.tasks.text import clean, collapse_spaces, title_and_body


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
