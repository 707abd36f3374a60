"""The ceiling for ingest: a Flask app that only verifies the HMAC and answers 202 (no database)."""

import hashlib
import hmac
import os

from flask import Flask, request

SECRET = os.environ.get("WCML_WEBHOOK_SECRETS", "bench-secret").split(",")[0].encode()
app = Flask("bare")


@app.post("/webhooks/github")
def webhook():
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return {"error": "bad signature"}, 401
    return {"status": "accepted"}, 202
