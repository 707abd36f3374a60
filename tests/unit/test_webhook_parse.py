import json
from urllib.parse import urlencode

import pytest

from services.ingest.signature import sign
from services.ingest.webhook import WebhookError, parse
from services.samples import issue_payload

SECRET = "s3cret"


def headers(body: bytes, **extra) -> dict:
    h = {"Content-Type": "application/json", "X-GitHub-Event": "issues",
         "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Hook-ID": "42",
         "X-Hub-Signature-256": sign(SECRET, body)}
    h.update(extra)
    return h


def test_json_body_is_parsed_into_a_delivery():
    body = json.dumps(issue_payload(number=7)).encode()
    d = parse(headers(body), body, [SECRET])
    assert (d.event, d.action, d.repo, d.issue_number, d.sender) == (
        "issues", "opened", "webcompat/web-bugs", 7, "sample-reporter")
    assert d.hook_id == "42"
    assert json.loads(d.payload_text)["issue"]["number"] == 7


def test_form_encoded_body_carries_the_payload_field():
    payload = json.dumps(issue_payload(number=8))
    body = urlencode({"payload": payload}).encode()
    d = parse(headers(body, **{"Content-Type": "application/x-www-form-urlencoded"}), body, [SECRET])
    assert d.issue_number == 8 and d.payload_text == payload


@pytest.mark.parametrize("change, status", [
    ({"X-Hub-Signature-256": "sha256=00"}, 401),
    ({"X-Hub-Signature-256": ""}, 401),
    ({"Content-Type": "text/plain"}, 415),
    ({"X-GitHub-Event": ""}, 400),
    ({"X-GitHub-Delivery": ""}, 400),
    ({"X-GitHub-Delivery": "../../etc/passwd"}, 400),
])
def test_refusals_have_their_status(change, status):
    body = json.dumps(issue_payload()).encode()
    with pytest.raises(WebhookError) as err:
        parse(headers(body, **change), body, [SECRET])
    assert err.value.status == status
    assert "\n" not in err.value.reason


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_signed_bodies_are_400(body):
    with pytest.raises(WebhookError) as err:
        parse(headers(body), body, [SECRET])
    assert err.value.status == 400


def test_form_without_payload_is_400():
    body = b"other=1"
    with pytest.raises(WebhookError) as err:
        parse(headers(body, **{"Content-Type": "application/x-www-form-urlencoded"}), body, [SECRET])
    assert err.value.status == 400


@pytest.mark.parametrize("field, value, where", [
    ("title", "a \ud800 b", "issue.title"), ("body", "\udfff", "issue.body"),
    ("labels", [{"name": "x\udbff"}], "issue.labels[0].name"),
    ("labels", {"\udc00": 1}, "issue.labels (a key)")])
def test_a_lone_surrogate_anywhere_is_refused_naming_where(field, value, where):
    payload = issue_payload(number=7)
    payload["issue"][field] = value
    body = json.dumps(payload).encode()  # escaped: "\\ud800", valid JSON
    with pytest.raises(WebhookError) as refused:
        parse(headers(body), body, [SECRET])
    assert refused.value.status == 400
    assert refused.value.reason == f"payload is not valid Unicode: a lone surrogate in payload.{where}"


def test_a_surrogate_pair_is_a_character_and_is_accepted():
    body = json.dumps(issue_payload(number=7, title="video \U0001F600 stalls")).encode()  # ensure_ascii
    assert b"\\ud83d\\ude00" in body
    title = json.loads(parse(headers(body), body, [SECRET]).payload_text)["issue"]["title"]
    assert title == "video \U0001F600 stalls"
