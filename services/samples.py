"""A signed sample webhook, so a new user can see a prediction without a GitHub hook.

Signs exactly as GitHub does (HMAC-SHA256 of the body, ``X-Hub-Signature-256``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid


def issue_payload(number: int = 1, action: str = "opened", title: str | None = None,
                  body: str | None = None, repo: str = "webcompat/web-bugs",
                  sender: str = "sample-reporter") -> dict:
    title = title or "www.example.com - video does not play"
    body = body or ("**URL**: https://www.example.com/watch\n\n**Browser / Version**: Firefox 131.0\n"
                    "**Problem type**: Video or audio doesn't play\n**Description**: the player stays "
                    "black and the console shows a media decode error\n\nSteps to Reproduce:\n"
                    "1. open the page\n2. press play")
    owner, name = repo.split("/", 1)
    user = {"login": sender, "id": 1, "type": "User"}
    return {
        "action": action,
        "issue": {
            "number": number, "title": title, "body": body, "state": "open", "user": user,
            "labels": [], "html_url": f"https://github.com/{repo}/issues/{number}",
            "url": f"https://api.github.com/repos/{repo}/issues/{number}",
        },
        "repository": {"full_name": repo, "name": name, "owner": {"login": owner}},
        "sender": user,
    }


def signed_request(url: str, secret: str, event: str, payload: dict,
                   delivery_id: str | None = None) -> urllib.request.Request:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": signature,
        "User-Agent": "GitHub-Hookshot/wcml-sample",
    })


def post_sample(url: str, secret: str, event: str = "issues", number: int = 1) -> tuple[int, str]:
    request = signed_request(url, secret, event, issue_payload(number))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post_sample_command(settings, url: str, event: str, number: int) -> int:
    """``wcml sample-webhook``: post one, print the answer; exit 1 on a refusal."""
    from shared.errors import UserError

    if not settings.webhook_secrets:
        raise UserError("no webhook secret to sign with: set WCML_WEBHOOK_SECRETS, or start `wcml run` here "
                        "first (it keeps one in var/webhook_secret)")
    try:
        status, body = post_sample(url, settings.webhook_secrets[0], event, number)
    except OSError as exc:
        raise UserError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    print(f"{status} {body}")
    return 0 if status < 300 else 1
