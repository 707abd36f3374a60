"""Text cleanup: what the models read."""

from services.predictor.tasks.text import clean, title_and_body


def test_markup_comments_and_urls_are_dropped():
    body = ("<!-- @browser: Firefox -->\n**URL**: https://example.com/a/b?c=d\n\n\n"
            "![shot](https://i.imgur.com/x.png)  <details>\tsteps\r\n</details>")
    assert clean(body) == "**URL**: example.com\n steps"
    assert title_and_body(" Title ", body) == "Title\n**URL**: example.com\n steps"
    assert clean(None) == ""
